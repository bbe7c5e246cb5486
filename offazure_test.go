package azcred

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/azurevm"
)

// fakeDMI points the firmware reader at a folder laid out as
// /sys/class/dmi/id for the rest of the test (nil attrs: no folder at all).
// Tests using it are not parallel: the root is package state.
func fakeDMI(t *testing.T, attrs map[string]string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dmi")
	if attrs != nil {
		require.NoError(t, os.Mkdir(dir, 0o700))
		for name, v := range attrs {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o444))
		}
	}
	saved := azurevm.DMIRoot
	azurevm.DMIRoot = dir
	t.Cleanup(func() { azurevm.DMIRoot = saved })
}

// noNetwork is a transport that fails the test if anything is sent.
type noNetwork struct{ t *testing.T }

func (n noNetwork) Do(r *http.Request) (*http.Response, error) {
	n.t.Errorf("a request was sent to %s", r.URL.Redacted())
	return nil, errors.New("no network in this test")
}

// miSlot returns what sits in the default chain's managed-identity slot.
func miSlot(t *testing.T, c *DefaultAzureCredential) TokenCredential {
	t.Helper()
	for _, s := range c.chain.sources {
		if s.name == credNameManagedIdentity {
			return s.cred
		}
	}
	t.Fatal("no managed-identity source in the chain")
	return nil
}

func TestDefaultAzureCredentialOffAzure(t *testing.T) {
	lenovo := map[string]string{"sys_vendor": "LENOVO", "chassis_asset_tag": "No Asset Information"}
	for _, tc := range []struct {
		name   string
		dmi    map[string]string // nil: no DMI folder
		env    []string
		modify func(o *DefaultAzureCredentialOptions)
		skip   bool
		// unreadable makes sys_vendor a folder, which no one can read as a file.
		unreadable bool
	}{
		{name: "Azure VM", dmi: map[string]string{"sys_vendor": "Microsoft Corporation", "chassis_asset_tag": azurevm.AzureAssetTag}},
		{name: "Hyper-V on a laptop", dmi: map[string]string{"sys_vendor": "Microsoft Corporation", "chassis_asset_tag": "1234-5678"}},
		{name: "physical laptop", dmi: lenovo, skip: true},
		{name: "no DMI"},
		{name: "unreadable DMI", dmi: map[string]string{}, unreadable: true},
		{name: "explicit IMDS endpoint", dmi: lenovo, env: []string{EnvPodIdentityAuthorityHost, "http://127.0.0.1:1"}},
		{name: "App Service environment", dmi: lenovo, env: []string{EnvIdentityEndpoint, "http://127.0.0.1:1/msi/token", EnvIdentityHeader, "h"}},
		{name: "AZCRED_ALWAYS_PROBE_IMDS", dmi: lenovo, env: []string{EnvAlwaysProbeIMDS, "true"}},
		{name: "AlwaysProbeIMDS option", dmi: lenovo, modify: func(o *DefaultAzureCredentialOptions) { o.AlwaysProbeIMDS = true }},
		{name: "managed identity alone", dmi: lenovo, env: []string{EnvTokenCredentials, "ManagedIdentityCredential"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeDMI(t, tc.dmi)
			if tc.unreadable {
				require.NoError(t, os.Mkdir(filepath.Join(azurevm.DMIRoot, "sys_vendor"), 0o700))
			}
			o := &DefaultAzureCredentialOptions{
				ClientOptions:                ClientOptions{Transport: noNetwork{t}, getenv: envMap(tc.env...)},
				toolRunner:                   noTools,
				ExcludeEnvironmentCredential: true, ExcludeWorkloadIdentityCredential: true,
			}
			if tc.modify != nil {
				tc.modify(o)
			}
			c, err := NewDefaultAzureCredential(o)
			require.NoError(t, err)
			slot := miSlot(t, c)
			if !tc.skip {
				assert.IsType(t, &ManagedIdentityCredential{}, slot, "managed identity probes as usual")
				return
			}
			require.IsType(t, placeholderSource{}, slot)
			_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
			var ce *ChainError
			require.ErrorAs(t, err, &ce)
			mi := ce.Attempts()[0]
			assert.Equal(t, credNameManagedIdentity, mi.Source)
			assert.Equal(t, OutcomeUnavailable, mi.Outcome)
			assert.ErrorContains(t, mi.Err, `ManagedIdentityCredential: skipped — this machine's firmware says it is not an Azure VM (vendor "LENOVO"`)
			assert.ErrorContains(t, mi.Err, "set AlwaysProbeIMDS in DefaultAzureCredentialOptions or AZCRED_ALWAYS_PROBE_IMDS=true to probe anyway")
			var un *CredentialUnavailableError
			assert.ErrorAs(t, mi.Err, &un)
		})
	}
}

func TestManagedIdentityCredentialAloneIgnoresFirmware(t *testing.T) {
	fakeDMI(t, map[string]string{"sys_vendor": "LENOVO"})
	c, err := NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{ClientOptions: ClientOptions{Transport: noNetwork{t}, getenv: envMap()}})
	require.NoError(t, err)
	assert.Equal(t, "IMDS", c.client.Source().String())
}
