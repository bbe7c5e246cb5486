package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/azurevm"
)

// offline is a transport that sends nothing: a request is a test failure.
type offline struct{ t *testing.T }

func (o offline) Do(r *http.Request) (*http.Response, error) {
	o.t.Errorf("a request was sent to %s", r.URL.Redacted())
	return nil, errors.New("offline")
}

// TestDoctorOnADeveloperLaptop shows what doctor prints on a laptop whose
// firmware is not Microsoft's, with az signed in: managed identity skipped
// with the reason, and from the second run on az's token from the
// persistent cache.
func TestDoctorOnADeveloperLaptop(t *testing.T) {
	_, out := azOutput(t, map[string]any{"upn": "dev@contoso.com", "tid": "t1"})
	isolate(t, map[string]string{"az": out})
	require.NoError(t, os.Unsetenv("AZURE_POD_IDENTITY_AUTHORITY_HOST"))
	dmi := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dmi, "sys_vendor"), []byte("LENOVO\n"), 0o444))
	saved := azurevm.DMIRoot
	azurevm.DMIRoot = dmi
	t.Cleanup(func() { azurevm.DMIRoot = saved })
	azDir := filepath.Join(os.Getenv("HOME"), ".azure")
	require.NoError(t, os.Mkdir(azDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(azDir, "azureProfile.json"), []byte(`{"subscriptions":[{"id":"s","isDefault":true,"tenantId":"t1"}]}`), 0o600))

	doctor := func() string {
		cred, err := azcred.NewDefaultAzureCredential(&azcred.DefaultAzureCredentialOptions{ClientOptions: azcred.ClientOptions{Transport: offline{t}}})
		require.NoError(t, err)
		var b bytes.Buffer
		printDoctorTable(&b, defaultScope, doctorRows(cred.Diagnose(context.Background(), azcred.TokenRequestOptions{Scopes: []string{defaultScope}})), true)
		return b.String()
	}
	first := doctor()
	t.Log("\n" + first)
	assert.Contains(t, first, `ManagedIdentityCredential: skipped — this machine's firmware says it is not an Azure VM (vendor "LENOVO"`)
	assert.Contains(t, first, "AZCRED_ALWAYS_PROBE_IMDS=true to probe anyway")
	assert.NotContains(t, first, "AzureCLICredential: token from the persistent cache")
	assert.Contains(t, first, "DefaultAzureCredential would use AzureCLICredential.")

	second := doctor()
	t.Log("\n" + second)
	if _, err := cache.DefaultKeyStore().Key("devtools"); errors.Is(err, cache.ErrKeyStoreUnavailable) {
		// No kernel keyring here (a container's seccomp profile): az runs
		// every time, as without the cache.
		assert.NotContains(t, second, "persistent cache")
	} else {
		assert.Contains(t, second, "AzureCLICredential: token from the persistent cache (az sign-in unchanged since ")
	}
	assert.Contains(t, second, "DefaultAzureCredential would use AzureCLICredential.")
}
