package msi

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/fsx"
)

// maxArcKeySize is the largest key file the Arc agent writes.
const maxArcKeySize = 4096

// himdsPath returns the Arc agent's executable: the seam's value, else the
// platform's ("" where Arc does not run).
func himdsPath(seam string, getenv env.Getenv) string {
	if seam != "" {
		return seam
	}
	switch runtime.GOOS {
	case "linux":
		return "/opt/azcmagent/bin/himds"
	case "windows":
		if pd := getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, "AzureConnectedMachineAgent", "himds.exe")
		}
	}
	return ""
}

// arcKeyDir returns the folder the agent's key files must be in.
func arcKeyDir(seam string, getenv env.Getenv) (string, error) {
	if seam != "" {
		return filepath.Clean(seam), nil
	}
	switch runtime.GOOS {
	case "linux":
		return "/var/opt/azcmagent/tokens", nil
	case "windows":
		if pd := getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, "AzureConnectedMachineAgent", "Tokens"), nil
		}
		return "", &ConfigError{"Azure Arc: the ProgramData environment variable is not set, so the agent's token folder cannot be found"}
	}
	return "", &ConfigError{fmt.Sprintf("Azure Arc managed identity is supported on Linux and Windows only, not %s", runtime.GOOS)}
}

func fileExists(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}

// arcKeyFromChallenge reads the key the Arc agent's 401 names. The realm
// must be a clean absolute path of a file directly in the agent's token
// folder, end in ".key", and be a regular file of at most 4096 bytes:
// anything else would let whatever answers on the endpoint make azcred read
// and send an arbitrary file. Containment is checked on the path opened:
// the folder with its symbolic links resolved, joined with the realm's last
// element; that element is opened without following a symbolic link and
// without blocking (a FIFO fails at once), and checked after opening.
func (c *Client) arcKeyFromChallenge(resp *responseView) (string, error) {
	if resp.status != http.StatusUnauthorized {
		return "", &ResponseError{Msg: fmt.Sprintf("Azure Arc answered the first request with %d, not the expected 401 challenge; check that %s is the Arc agent's endpoint", resp.status, env.IdentityEndpoint), StatusCode: resp.status, Body: resp.excerpt}
	}
	h := resp.header.Get("WWW-Authenticate")
	scheme, realm, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(scheme), "Basic realm") || strings.TrimSpace(realm) == "" {
		return "", &ResponseError{Msg: "Azure Arc's 401 has no \"WWW-Authenticate: Basic realm=<key file>\" header; check that the endpoint is the Arc agent's", StatusCode: resp.status}
	}
	path := strings.Trim(strings.TrimSpace(realm), `"`)
	if !strings.EqualFold(filepath.Ext(path), ".key") {
		return "", &ResponseError{Msg: fmt.Sprintf("Azure Arc's challenge names a file whose name does not end in .key (%q); refusing to read it", filepath.Base(path)), StatusCode: resp.status}
	}
	// A path that Clean would change holds "." or ".." elements (or doubled
	// separators): the kernel resolves "sub/.." through a symbolic link sub,
	// so a cleaned copy says nothing about the file opened.
	base := filepath.Base(path)
	if !filepath.IsAbs(path) || filepath.Clean(path) != path || filepath.Dir(path) != c.arcDir || !plainKeyName(base) {
		return "", &ResponseError{Msg: fmt.Sprintf("Azure Arc's challenge names a key file outside the agent's token folder %s (or a path with . or .. elements); refusing to read it", c.arcDir), StatusCode: resp.status}
	}
	dir, err := filepath.EvalSymlinks(c.arcDir)
	if err != nil {
		return "", &ResponseError{Msg: fmt.Sprintf("cannot open the Azure Arc token folder %s; check that the agent is installed", c.arcDir), StatusCode: resp.status, Err: err}
	}
	b, err := fsx.ReadRegular(filepath.Join(dir, base), maxArcKeySize)
	switch {
	case errors.Is(err, fsx.ErrNotRegular):
		return "", &ResponseError{Msg: "the Azure Arc key file is not a regular file (a symbolic link, FIFO, device or folder); refusing to read it", StatusCode: resp.status, Err: err}
	case errors.Is(err, fsx.ErrTooLarge):
		return "", &ResponseError{Msg: fmt.Sprintf("the Azure Arc key file is larger than the agent writes (at most %d bytes); refusing to send it", maxArcKeySize), StatusCode: resp.status}
	case err != nil:
		return "", &ResponseError{Msg: "cannot open the Azure Arc key file; run as a user in the agent's himds group (Linux) or an administrator (Windows)", StatusCode: resp.status, Err: err}
	}
	return string(b), nil
}

// plainKeyName reports whether name is one ordinary file name: not "." or
// "..", and without a drive or stream separator (":" on Windows).
func plainKeyName(name string) bool {
	return name != "." && name != ".." && !strings.ContainsAny(name, `/\:`+"\x00")
}

// arcEchoes reports whether an Arc token response names the requested
// user-assigned identity: the agent ignores identities it does not know and
// answers with the machine's own, which must not pass for the one asked.
func arcEchoes(id ID, fields map[string]string) bool {
	var names []string
	switch id.Kind {
	case None:
		return true
	case ClientID:
		names = []string{"client_id"}
	case ObjectID:
		names = []string{"object_id"}
	case ResourceID:
		names = []string{"msi_res_id", "mi_res_id"}
	}
	for _, n := range names {
		if v := fields[n]; v != "" && strings.EqualFold(v, id.Value) {
			return true
		}
	}
	return false
}
