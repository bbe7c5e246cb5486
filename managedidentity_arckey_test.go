//go:build unix

package azcred

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
)

// TestManagedIdentityArcKeyFileIsTheFileOpened covers key files that pass a
// check on the cleaned path but are not a regular file in the folder: a
// symbolic link, a ".." through a symlinked subfolder, a FIFO (which would
// block the shared fetch forever), a folder.
func TestManagedIdentityArcKeyFileIsTheFileOpened(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	keyDir := filepath.Join(base, "tokens")
	outside := filepath.Join(base, "elsewhere", "deeper")
	require.NoError(t, os.MkdirAll(keyDir, 0o700))
	require.NoError(t, os.MkdirAll(outside, 0o700))
	// <tokens>/sub -> <base>/elsewhere/deeper, so <tokens>/sub/../stolen.key
	// is <base>/elsewhere/stolen.key to the kernel.
	require.NoError(t, os.Symlink(outside, filepath.Join(keyDir, "sub")))
	require.NoError(t, os.WriteFile(filepath.Join(base, "elsewhere", "stolen.key"), []byte("outside-secret"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "target.key"), []byte("outside-secret"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(outside, "target.key"), filepath.Join(keyDir, "link.key")))
	fifo := filepath.Join(keyDir, "pipe.key")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	t.Cleanup(func() {
		// Release a reader the old code left blocked in open.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			_ = f.Close()
		}
	})
	require.NoError(t, os.Mkdir(filepath.Join(keyDir, "folder.key"), 0o700))

	for _, tc := range []struct{ name, realm, want string }{
		{"dot-dot through a symlinked subfolder", keyDir + "/sub/../stolen.key", "outside the agent's token folder"},
		{"symbolic link", filepath.Join(keyDir, "link.key"), "not a regular file"},
		{"FIFO", fifo, "not a regular file"},
		{"folder", filepath.Join(keyDir, "folder.key"), "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newMIFixture(t)
			h, err := f.e.StartArc(t.TempDir())
			require.NoError(t, err)
			h.InjectFault(emulator.MIFault{Status: 401, Header: http.Header{"Www-Authenticate": {"Basic realm=" + tc.realm}}, Body: []byte(`{}`)})
			o := miOptions(t, h, nil)
			o.arcKeyDir = keyDir
			c, err := NewManagedIdentityCredential(o)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err = c.GetToken(ctx, armRequest)
			var af *AuthenticationFailedError
			require.ErrorAs(t, err, &af, "refused at once, not a deadline: %v", err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "outside-secret")
			assert.Len(t, h.Requests(), 1, "no key was sent")
		})
	}

}
