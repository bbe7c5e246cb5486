//go:build linux

package azcred

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInteractiveBrowserWithChromium drives the browser sign-in with a real
// headless Chromium: it loads the emulator's authorize page, whose
// auto-submitting form_post page posts to the credential's loopback
// listener. It skips where Debian's chromium package is not installed.
func TestInteractiveBrowserWithChromium(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium); skipping the real-browser sign-in test")
	}
	e := newPublicEmulator(t, nil)

	// Chromium trusts its own store, not SSL_CERT_FILE: pin the emulator's
	// leaf key instead.
	resp, err := e.Client().Get(e.URL() + "/" + testTenant + "/v2.0/.well-known/openid-configuration")
	require.NoError(t, err)
	resp.Body.Close()
	require.NotNil(t, resp.TLS)
	spki := sha256.Sum256(resp.TLS.PeerCertificates[0].RawSubjectPublicKeyInfo)
	pin := base64.StdEncoding.EncodeToString(spki[:])

	// The profile folder is made before the cleanup that kills Chromium is
	// registered, so that (cleanups run last-in, first-out) Chromium is gone
	// before the folder is removed.
	profile := t.TempDir()
	var cmd *exec.Cmd
	done := make(chan struct{})
	open := func(_ context.Context, u string) error {
		cmd = exec.Command(bin,
			"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir="+profile,
			"--ignore-certificate-errors-spki-list="+pin,
			u)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		go func() {
			_ = cmd.Wait()
			close(done)
		}()
		return nil
	}
	t.Cleanup(func() {
		if cmd != nil && cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	c, err := NewInteractiveBrowserCredential(&InteractiveBrowserCredentialOptions{
		ClientOptions: emulatorOptions(e), ClientID: testPublicClient, TenantID: testTenant,
		Timeout: 60 * time.Second, openBrowser: open,
	})
	require.NoError(t, err)
	tok, err := c.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	claims, err := e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, testUser, claims["upn"])
	got, authorize, _ := grants(e)
	assert.Equal(t, []string{"authorization_code"}, got)
	assert.GreaterOrEqual(t, authorize, 1)
}
