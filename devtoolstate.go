package azcred

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/fsx"
)

// The developer tools' sign-in state, read without starting the tools: a
// fingerprint of the files in which each tool keeps who is signed in, to
// which tenant and subscription. A token kept in the persistent cache is
// used only while the fingerprint it was stored under is unchanged, so `az
// login`, `az logout`, `az account set`, a tenant switch or another config
// folder all mean the tool runs again.

// signInState is a fingerprint of one tool's sign-in state.
type signInState struct {
	// sum is the hex SHA-256 of everything read: the folder, the files'
	// contents (or, for encrypted files, their size and time) and the tool
	// executable.
	sum string
	// since is the newest modification time of the file that records the
	// signed-in account (azureProfile.json, auth.json, AzureRmContext.json);
	// zero when it does not exist.
	since time.Time
}

// stateReader reads one tool's sign-in state through the environment seam.
type stateReader func(getenv env.Getenv) (signInState, error)

// stateHash accumulates a fingerprint.
type stateHash struct {
	h     hash.Hash
	since time.Time
}

func newStateHash(parts ...string) *stateHash {
	s := &stateHash{h: sha256.New()}
	s.text(parts...)
	return s
}

// text adds strings, each prefixed by its length so that no two lists of
// strings add the same bytes.
func (s *stateHash) text(parts ...string) {
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		s.h.Write(n[:])
		s.h.Write([]byte(p))
	}
}

// read returns a file's content; a missing file is nil content, not an
// error, and adds "absent". A symbolic link is followed (the folder is the
// user's own), but the file is opened without blocking and must be a
// regular file: a FIFO in its place would otherwise block the read, which
// no tool timeout bounds, for ever.
func (s *stateHash) read(path string) ([]byte, fs.FileInfo, error) {
	target, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		s.text(path, "absent")
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	f, err := fsx.OpenRegular(target)
	if errors.Is(err, fs.ErrNotExist) {
		s.text(path, "absent")
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	const maxStateFile = 16 << 20
	if info.Size() > maxStateFile {
		return nil, nil, fmt.Errorf("%s is larger than %d bytes", path, maxStateFile)
	}
	b := make([]byte, info.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, nil, err
	}
	return b, info, nil
}

// file adds a file's content. account marks the file that records the
// signed-in account: its time becomes the state's since.
func (s *stateHash) file(path string, account bool) ([]byte, error) {
	b, info, err := s.read(path)
	if err != nil || info == nil {
		return nil, err
	}
	s.text(path, "content")
	s.h.Write(b)
	if account && info.ModTime().After(s.since) {
		s.since = info.ModTime()
	}
	return b, nil
}

// stat adds a file's size and modification time: for files whose content
// is encrypted (the Azure CLI's .bin caches on Windows).
func (s *stateHash) stat(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		s.text(path, "absent")
		return nil
	}
	if err != nil {
		return err
	}
	s.text(path, "stat", fmt.Sprint(info.Size()), fmt.Sprint(info.ModTime().UnixNano()))
	return nil
}

// msalAccounts adds who an MSAL token cache holds: the keys of its Account
// and RefreshToken sections, not its access tokens, which the tool rewrites
// whenever it renews one for itself (that is no change of sign-in). A file
// that is not MSAL's JSON adds its whole content.
func (s *stateHash) msalAccounts(path string) error {
	b, info, err := s.read(path)
	if err != nil || info == nil {
		return err
	}
	var doc map[string]map[string]json.RawMessage
	if json.Unmarshal(b, &doc) != nil {
		s.text(path, "content")
		s.h.Write(b)
		return nil
	}
	s.text(path, "msal")
	for _, section := range []string{"Account", "RefreshToken", "AppMetadata"} {
		keys := make([]string, 0, len(doc[section]))
		for k := range doc[section] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		s.text(section)
		s.text(keys...)
	}
	return nil
}

// names adds the names of a folder's entries (the Azure Developer CLI keeps
// one file per signed-in cache partition and service principal).
func (s *stateHash) names(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		s.text(dir, "absent")
		return nil
	}
	if err != nil {
		return err
	}
	s.text(dir, "names")
	for _, e := range entries {
		s.text(e.Name())
	}
	return nil
}

func (s *stateHash) state() signInState {
	return signInState{sum: hex.EncodeToString(s.h.Sum(nil)), since: s.since}
}

// homeDir is the user's home folder from the environment: %USERPROFILE% on
// Windows, $HOME elsewhere.
func homeDir(getenv env.Getenv) (string, error) {
	name := "HOME"
	if runtime.GOOS == "windows" {
		name = "USERPROFILE"
	}
	if h := getenv(name); h != "" {
		return h, nil
	}
	return "", fmt.Errorf("the %s environment variable is not set, so the tool's sign-in folder is unknown", name)
}

// toolDir is the folder named by the variable, else dot under the home
// folder; always absolute.
func toolDir(getenv env.Getenv, variable, dot string) (string, error) {
	dir := getenv(variable)
	if dir == "" {
		home, err := homeDir(getenv)
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, dot)
	}
	return filepath.Abs(dir)
}

// azureCLIState reads the Azure CLI's sign-in state in $AZURE_CONFIG_DIR
// (default ~/.azure): the profile (accounts, subscriptions, the default
// one, tenants), MSAL's token cache (.json, or .bin encrypted on Windows),
// service principals, and the selected cloud.
func azureCLIState(getenv env.Getenv) (signInState, error) {
	dir, err := toolDir(getenv, env.AzureConfigDir, ".azure")
	if err != nil {
		return signInState{}, err
	}
	s := newStateHash("az", dir)
	if _, err := s.file(filepath.Join(dir, "azureProfile.json"), true); err != nil {
		return signInState{}, err
	}
	if err := s.msalAccounts(filepath.Join(dir, "msal_token_cache.json")); err != nil {
		return signInState{}, err
	}
	for _, name := range []string{"msal_token_cache.bin", "service_principal_entries.bin"} {
		if err := s.stat(filepath.Join(dir, name)); err != nil {
			return signInState{}, err
		}
	}
	for _, name := range []string{"service_principal_entries.json", "clouds.config"} {
		if _, err := s.file(filepath.Join(dir, name), false); err != nil {
			return signInState{}, err
		}
	}
	return s.state(), nil
}

// azdState reads the Azure Developer CLI's sign-in state in
// $AZD_CONFIG_DIR (default ~/.azd): auth.json (the current user),
// config.json (with auth.useAzCliAuth, which hands sign-in to the Azure
// CLI, whose state then counts too) and the names of the files under auth/
// and auth/msal/. With external authentication (AZD_AUTH_ENDPOINT) the
// state cannot be read.
func azdState(getenv env.Getenv) (signInState, error) {
	dir, err := toolDir(getenv, env.AzdConfigDir, ".azd")
	if err != nil {
		return signInState{}, err
	}
	if getenv("AZD_AUTH_ENDPOINT") != "" {
		// External authentication (the Visual Studio Code extension sets
		// it): azd answers for whoever is signed in to the program behind
		// the endpoint, which no file here records.
		return signInState{}, errors.New("azd's sign-in is delegated to the program at AZD_AUTH_ENDPOINT (external authentication), whose signed-in account cannot be read")
	}
	s := newStateHash("azd", dir)
	if _, err := s.file(filepath.Join(dir, "auth.json"), true); err != nil {
		return signInState{}, err
	}
	config, err := s.file(filepath.Join(dir, "config.json"), false)
	if err != nil {
		return signInState{}, err
	}
	for _, sub := range []string{"auth", filepath.Join("auth", "msal")} {
		if err := s.names(filepath.Join(dir, sub)); err != nil {
			return signInState{}, err
		}
	}
	if bytes.Contains(config, []byte("useAzCliAuth")) {
		az, err := azureCLIState(getenv)
		if err != nil {
			return signInState{}, err
		}
		s.text("az", az.sum)
	}
	return s.state(), nil
}

// azurePowerShellState reads Azure PowerShell's saved context in ~/.Azure:
// AzureRmContext.json (accounts, tenants, the selected context) and
// AzureRmContextSettings.json.
func azurePowerShellState(getenv env.Getenv) (signInState, error) {
	home, err := homeDir(getenv)
	if err != nil {
		return signInState{}, err
	}
	dir, err := filepath.Abs(filepath.Join(home, ".Azure"))
	if err != nil {
		return signInState{}, err
	}
	s := newStateHash("pwsh", dir)
	if _, err := s.file(filepath.Join(dir, "AzureRmContext.json"), true); err != nil {
		return signInState{}, err
	}
	if _, err := s.file(filepath.Join(dir, "AzureRmContextSettings.json"), false); err != nil {
		return signInState{}, err
	}
	return s.state(), nil
}
