//go:build unix

package azcred

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/fsx"
)

// A named pipe (FIFO) in place of a tool's sign-in file must not block the
// reading of the sign-in state: opening a FIFO that has no writer blocks
// for ever, and that read happens before the tool's own timeout applies.
// The state is then unreadable: the persistent cache is not used and the
// tool runs as without it.
func TestToolSignInStateDoesNotBlockOnFIFO(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file string
		read       stateReader
	}{
		{"az profile", filepath.Join(".azure", "azureProfile.json"), azureCLIState},
		{"az MSAL cache", filepath.Join(".azure", "msal_token_cache.json"), azureCLIState},
		{"azd auth.json", filepath.Join(".azd", "auth.json"), azdState},
		{"PowerShell context", filepath.Join(".Azure", "AzureRmContext.json"), azurePowerShellState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			fifo := filepath.Join(home, tc.file)
			require.NoError(t, os.MkdirAll(filepath.Dir(fifo), 0o700))
			require.NoError(t, syscall.Mkfifo(fifo, 0o600))
			done := make(chan error, 1)
			go func() {
				_, err := tc.read(envMap("HOME", home, "USERPROFILE", home))
				done <- err
			}()
			select {
			case err := <-done:
				require.ErrorIs(t, err, fsx.ErrNotRegular, "a FIFO is not a sign-in file")
			case <-time.After(5 * time.Second):
				unblockFIFO(fifo)
				<-done
				t.Fatal("reading the sign-in state blocked on a FIFO")
			}
		})
	}
}

// The same through a credential: GetToken still answers, from az.
func TestToolCacheSignInFIFO(t *testing.T) {
	t.Parallel()
	l := newToolLab(t, "fresh-1")
	profile := filepath.Join(l.azDir, "azureProfile.json")
	require.NoError(t, os.Remove(profile))
	require.NoError(t, syscall.Mkfifo(profile, 0o600))
	type answer struct {
		tok string
		err error
	}
	done := make(chan answer, 1)
	go func() {
		tok, _, err := l.process(t, &AzureCLICredentialOptions{devToolSeams: l.seams(env.AzureConfigDir, l.azDir)})
		done <- answer{tok, err}
	}()
	select {
	case a := <-done:
		require.NoError(t, a.err)
		assert.Equal(t, "fresh-1", a.tok, "az ran, as without the cache")
	case <-time.After(30 * time.Second):
		unblockFIFO(profile)
		<-done
		t.Fatal("GetToken blocked on a FIFO in the Azure CLI's folder")
	}
}

// unblockFIFO opens fifo for writing, which lets a reader blocked in open
// go on, so that a failing test does not leave a goroutine behind.
func unblockFIFO(fifo string) {
	if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
		_ = f.Close()
	}
}

// Another process holding the store's lock (stopped with Ctrl-Z while
// writing) costs a bounded wait, never the token: the tool runs and
// answers as without the cache.
func TestToolCacheLockHeldElsewhere(t *testing.T) {
	t.Parallel()
	l := newToolLab(t, "fresh-1")
	lock, err := os.OpenFile(filepath.Join(l.store, toolStoreName+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lock.Close() })
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	start := time.Now()
	tok, _, err := l.process(t, nil)
	require.NoError(t, err, "a held lock is never an error")
	assert.Equal(t, "fresh-1", tok)
	assert.Less(t, time.Since(start), 15*time.Second, "the wait for the lock is bounded well inside the fetch's bound")
	assert.Equal(t, 1, l.runs(t))
}
