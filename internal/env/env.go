// Package env names every environment variable azcred reads, and reads them
// through a Getenv seam so tests can supply their own environment.
package env

import (
	"os"
	"strings"
)

// Variables read by the Entra-backed credentials.
const (
	TenantID                   = "AZURE_TENANT_ID"
	ClientID                   = "AZURE_CLIENT_ID"
	ClientSecret               = "AZURE_CLIENT_SECRET"
	ClientCertificatePath      = "AZURE_CLIENT_CERTIFICATE_PATH"
	ClientCertificatePassword  = "AZURE_CLIENT_CERTIFICATE_PASSWORD"
	ClientSendCertificateChain = "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"
	Username                   = "AZURE_USERNAME"
	Password                   = "AZURE_PASSWORD"
	AuthorityHost              = "AZURE_AUTHORITY_HOST"
	RegionalAuthorityName      = "AZURE_REGIONAL_AUTHORITY_NAME"
	AdditionallyAllowedTenants = "AZURE_ADDITIONALLY_ALLOWED_TENANTS"
	DisableMultitenantAuth     = "AZURE_IDENTITY_DISABLE_MULTITENANTAUTH"
	TokenCredentials           = "AZURE_TOKEN_CREDENTIALS"
	FederatedTokenFile         = "AZURE_FEDERATED_TOKEN_FILE"
	RegionName                 = "REGION_NAME"
)

// Variables of the AKS token proxy used by workload identity.
const (
	KubernetesTokenProxy = "AZURE_KUBERNETES_TOKEN_PROXY"
	KubernetesCAFile     = "AZURE_KUBERNETES_CA_FILE"
	KubernetesCAData     = "AZURE_KUBERNETES_CA_DATA"
	KubernetesSNIName    = "AZURE_KUBERNETES_SNI_NAME"
)

// Variable of Azure Pipelines' OIDC endpoint.
const SystemOIDCRequestURI = "SYSTEM_OIDCREQUESTURI"

// Variables set by the managed-identity hosts.
const (
	PodIdentityAuthorityHost = "AZURE_POD_IDENTITY_AUTHORITY_HOST"
	IdentityEndpoint         = "IDENTITY_ENDPOINT"
	IdentityHeader           = "IDENTITY_HEADER"
	IdentityServerThumbprint = "IDENTITY_SERVER_THUMBPRINT"
	IMDSEndpoint             = "IMDS_ENDPOINT"
	MSIEndpoint              = "MSI_ENDPOINT"
	MSISecret                = "MSI_SECRET"
	DefaultIdentityClientID  = "DEFAULT_IDENTITY_CLIENT_ID"
)

// Getenv reads one variable; os.Getenv is the production value.
type Getenv func(name string) string

// OrOS returns g, or os.Getenv when g is nil.
func OrOS(g Getenv) Getenv {
	if g == nil {
		return os.Getenv
	}
	return g
}

// List splits a ';'-separated value (AZURE_ADDITIONALLY_ALLOWED_TENANTS),
// trimming spaces and dropping empty items. It returns nil for an empty value.
func List(value string) []string {
	var out []string
	for item := range strings.SplitSeq(value, ";") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Bool reports whether value means true: "1" or "true" in any case, as the
// other Azure identity libraries read AZURE_CLIENT_SEND_CERTIFICATE_CHAIN.
func Bool(value string) bool {
	v := strings.TrimSpace(value)
	return v == "1" || strings.EqualFold(v, "true")
}
