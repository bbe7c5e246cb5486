package msi

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/azcred/azcred/internal/env"
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
// must be a file directly in the agent's token folder, end in ".key", and be
// at most 4096 bytes: anything else would let whatever answers on the
// endpoint make azcred read and send an arbitrary file.
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
	if !filepath.IsAbs(path) || filepath.Dir(filepath.Clean(path)) != c.arcDir {
		return "", &ResponseError{Msg: fmt.Sprintf("Azure Arc's challenge names a key file outside the agent's token folder %s; refusing to read it", c.arcDir), StatusCode: resp.status}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", &ResponseError{Msg: "cannot open the Azure Arc key file; run as a user in the agent's himds group (Linux) or an administrator (Windows)", StatusCode: resp.status, Err: err}
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return "", &ResponseError{Msg: "cannot read the Azure Arc key file", StatusCode: resp.status, Err: err}
	}
	if !st.Mode().IsRegular() || st.Size() > maxArcKeySize {
		return "", &ResponseError{Msg: fmt.Sprintf("the Azure Arc key file is not a regular file of at most %d bytes (it has %d); refusing to send it", maxArcKeySize, st.Size()), StatusCode: resp.status}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxArcKeySize+1))
	if err != nil {
		return "", &ResponseError{Msg: "cannot read the Azure Arc key file", StatusCode: resp.status, Err: err}
	}
	if len(b) > maxArcKeySize {
		return "", &ResponseError{Msg: fmt.Sprintf("the Azure Arc key file is larger than %d bytes; refusing to send it", maxArcKeySize), StatusCode: resp.status}
	}
	return string(b), nil
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
