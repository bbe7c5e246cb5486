package azidentity

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// ManagedIDKind identifies a user-assigned managed identity: a [ClientID],
// an [ObjectID] or a [ResourceID]. Only this package's types implement it.
type ManagedIDKind interface {
	fmt.Stringer
	coreID() azcred.ManagedIDKind
}

// ClientID is a managed identity's client (application) ID.
type ClientID string

// String returns the ID.
func (c ClientID) String() string { return string(c) }

func (c ClientID) coreID() azcred.ManagedIDKind { return azcred.ClientID(c) }

// ObjectID is a managed identity's object (principal) ID.
type ObjectID string

// String returns the ID.
func (o ObjectID) String() string { return string(o) }

func (o ObjectID) coreID() azcred.ManagedIDKind { return azcred.ObjectID(o) }

// ResourceID is a managed identity's Azure resource ID, such as
// "/subscriptions/.../userAssignedIdentities/name".
type ResourceID string

// String returns the ID.
func (r ResourceID) String() string { return string(r) }

func (r ResourceID) coreID() azcred.ManagedIDKind { return azcred.ResourceID(r) }

// ManagedIdentityCredentialOptions contains optional parameters for
// ManagedIdentityCredential.
type ManagedIdentityCredentialOptions struct {
	// ClientOptions configures the pipeline of the credential's requests.
	// Retry fields left zero take the managed-identity defaults for IMDS
	// requests: 6 retries, 2 s first delay, 25 s maximum delay, 1 minute
	// per try, and statuses 404, 410, 429 and 500-511. Default: those and
	// azcore's defaults.
	azcore.ClientOptions

	// ID selects a user-assigned identity. Default: nil, the
	// system-assigned identity. Service Fabric and Cloud Shell accept only
	// the default; Azure ML only a ClientID.
	ID ManagedIDKind
}

// ManagedIdentityCredential authenticates as an Azure managed identity on
// the host it runs on: App Service and Functions, Azure Arc, Azure ML, Cloud
// Shell, Service Fabric, or the Instance Metadata Service of VMs, AKS and
// others (chosen by the host's environment variables, as in azidentity).
// Tokens are cached process-wide per identity and resource, because the
// endpoints throttle; it is safe for concurrent use.
type ManagedIdentityCredential struct {
	source
}

// NewManagedIdentityCredential constructs a ManagedIdentityCredential. Pass
// nil to accept default options.
func NewManagedIdentityCredential(options *ManagedIdentityCredentialOptions) (*ManagedIdentityCredential, error) {
	o := ManagedIdentityCredentialOptions{}
	if options != nil {
		o = *options
	}
	p, co, err := setup(&o.ClientOptions, true)
	if err != nil {
		return nil, err
	}
	mo := &azcred.ManagedIdentityCredentialOptions{ClientOptions: co}
	if o.ID != nil {
		mo.ID = o.ID.coreID()
	}
	if pinned, ok := serviceFabricTransport(o.Transport); ok {
		mo.Transport = pinned
	}
	c, err := azcred.NewManagedIdentityCredential(mo)
	if err != nil {
		return nil, err
	}
	if logShould(EventAuthentication) {
		msg := credNameManagedIdentity + " will use " + managedIdentityHost() + " managed identity"
		switch id := o.ID.(type) {
		case ClientID:
			msg += fmt.Sprintf(" with client ID %q", id.String())
		case ObjectID:
			msg += fmt.Sprintf(" with object ID %q", id.String())
		case ResourceID:
			msg += fmt.Sprintf(" with resource ID %q", id.String())
		}
		logWrite(EventAuthentication, msg)
	}
	return &ManagedIdentityCredential{newSource(credNameManagedIdentity, c, p)}, nil
}

// serviceFabricTransport returns the transport Service Fabric needs: its
// endpoint's self-signed certificate is pinned by thumbprint, which needs a
// TLS configuration of its own, so its requests go directly over the
// caller's *http.Client (or the default one) rather than through azcore's
// pipeline. ok is false off Service Fabric or for a transport that is not an
// *http.Client.
func serviceFabricTransport(t policy.Transporter) (*http.Client, bool) {
	if os.Getenv("IDENTITY_SERVER_THUMBPRINT") == "" {
		return nil, false
	}
	switch c := t.(type) {
	case nil:
		return &http.Client{}, true
	case *http.Client:
		return c, true
	}
	return nil, false
}

// GetToken requests an access token from the host's managed-identity
// endpoint, or returns the cached one. The request's TenantID is ignored.
func (c *ManagedIdentityCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return c.getToken(ctx, opts)
}

var _ azcore.TokenCredential = (*ManagedIdentityCredential)(nil)

// managedIdentityHost names the managed-identity host the environment
// selects, by the variables each host sets, as the credential decides.
func managedIdentityHost() string {
	has := func(name string) bool { return os.Getenv(name) != "" }
	switch {
	case has("IDENTITY_ENDPOINT") && has("IDENTITY_HEADER") && has("IDENTITY_SERVER_THUMBPRINT"):
		return "Service Fabric"
	case has("IDENTITY_ENDPOINT") && has("IDENTITY_HEADER"):
		return "App Service"
	case has("IDENTITY_ENDPOINT") && has("IMDS_ENDPOINT"):
		return "Azure Arc"
	case has("MSI_ENDPOINT") && has("MSI_SECRET"):
		return "Azure ML"
	case has("MSI_ENDPOINT"):
		return "Cloud Shell"
	}
	return "IMDS"
}
