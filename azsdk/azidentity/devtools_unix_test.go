//go:build unix

package azidentity_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azsdk/azidentity"
)

// fakeAz puts an "az" on PATH that records each run in a file and prints
// script's output; it returns the file.
func fakeAz(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	body := fmt.Sprintf("#!/bin/sh\necho run >> %q\n%s\n", runs, script)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "az"), []byte(body), 0o700))
	t.Setenv("PATH", dir+string(os.PathListSeparator)+"/usr/bin"+string(os.PathListSeparator)+"/bin")
	return runs
}

func countRuns(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	return strings.Count(string(b), "run")
}

func TestAzureCLICredentialCachesTheToolsToken(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	runs := fakeAz(t, fmt.Sprintf(`cat <<'JSON'
{"accessToken":"cli-token","expiresOn":"2099-01-01 00:00:00.000000","expires_on":%d,"subscription":"s","tenant":%q,"tokenType":"Bearer"}
JSON`, exp, testTenant))
	cred, err := azidentity.NewAzureCLICredential(nil)
	require.NoError(t, err)
	for range 3 {
		tok, err := cred.GetToken(context.Background(), armRequest)
		require.NoError(t, err)
		assert.Equal(t, "cli-token", tok.Token)
		assert.Equal(t, exp, tok.ExpiresOn.Unix())
	}
	assert.Equal(t, 1, countRuns(t, runs), "az ran once for three calls")
}

func TestAzureCLICredentialNotLoggedIn(t *testing.T) {
	fakeAz(t, `echo "ERROR: Please run 'az login' to setup account." >&2; exit 1`)
	cred, err := azidentity.NewAzureCLICredential(nil)
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "az login")
	// Unavailable, as in azidentity: a chain of this package moves on.
	chain, err := azidentity.NewChainedTokenCredential([]azcore.TokenCredential{cred, &staticCred{}}, nil)
	require.NoError(t, err)
	tok, err := chain.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Equal(t, "static", tok.Token)
}

// A request with Claims (a CAE or conditional-access challenge) is refused
// by the Azure CLI without running it, with the sign-in command that
// satisfies the claims, as a plain error: azidentity does not call it an
// AuthenticationFailedError.
func TestAzureCLICredentialClaimsChallenge(t *testing.T) {
	runs := fakeAz(t, `echo "ERROR: not expected to run" >&2; exit 1`)
	cred, err := azidentity.NewAzureCLICredential(nil)
	require.NoError(t, err)
	claims := `{"access_token":{"nbf":{"essential":true,"value":"1"}}}`
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{armScope}, Claims: claims})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "az login --claims-challenge "+base64.StdEncoding.EncodeToString([]byte(claims)))
	var failed *azidentity.AuthenticationFailedError
	assert.False(t, errors.As(err, &failed), "%v", err)
	assert.Zero(t, countRuns(t, runs))
}
