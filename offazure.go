package azcred

import (
	"fmt"

	"github.com/azcred/azcred/internal/azurevm"
	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/msi"
)

// EnvAlwaysProbeIMDS names the variable that, set to "1" or "true", makes
// DefaultAzureCredential probe IMDS on every machine, as
// [DefaultAzureCredentialOptions.AlwaysProbeIMDS] does.
const EnvAlwaysProbeIMDS = env.AlwaysProbeIMDS // AZCRED_ALWAYS_PROBE_IMDS

// offAzure returns the error that makes DefaultAzureCredential's
// managed-identity source unavailable, without a request, on a machine
// whose firmware says it is not an Azure VM; nil when the source should
// probe as usual. It applies only to IMDS found by default: a host that its
// environment selects (App Service, Arc, ...), an IMDS endpoint set by
// option or AZURE_POD_IDENTITY_AUTHORITY_HOST, and AZCRED_ALWAYS_PROBE_IMDS
// all probe. Only positive evidence skips: a manufacturer that was read and
// is not Microsoft (Hyper-V on a laptop says Microsoft too, and probes).
func offAzure(client *msi.Client, explicitEndpoint bool, getenv env.Getenv) error {
	if client.Source() != msi.IMDS || explicitEndpoint || getenv(env.PodIdentityAuthorityHost) != "" || env.Bool(getenv(env.AlwaysProbeIMDS)) {
		return nil
	}
	f := azurevm.Read()
	if !f.NotAzureVM() {
		return nil
	}
	return NewCredentialUnavailableError(credNameManagedIdentity, fmt.Sprintf(
		"skipped — this machine's firmware says it is not an Azure VM (vendor %q, from %s); set AlwaysProbeIMDS in DefaultAzureCredentialOptions or %s=true to probe anyway",
		f.Vendor, f.From, env.AlwaysProbeIMDS), nil)
}
