package azcred

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/httpx"
	"github.com/azcred/azcred/internal/redact"
)

const credNameAzurePipelines = "AzurePipelinesCredential"

const (
	// pipelinesAPIVersion is the Azure DevOps REST API version of the OIDC
	// token request.
	pipelinesAPIVersion = "7.1"
	// maxOIDCResponseSize bounds the DevOps answer: one JWT in JSON.
	maxOIDCResponseSize = 64 << 10
)

// AzurePipelinesCredentialOptions contains optional parameters for
// AzurePipelinesCredential.
type AzurePipelinesCredentialOptions struct {
	ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// DisableInstanceDiscovery is accepted for compatibility with azidentity.
	// azcred never sends discovery requests, so it has no effect. Default:
	// false.
	DisableInstanceDiscovery bool

	// Cache keeps access tokens in a persistent store (such as
	// [cache.NewFileStore], or a Redis store shared by a fleet) as well as in
	// memory, so that later runs of the program, and other processes
	// sharing the store, reuse them until they are due for refresh.
	// Default: nil, memory only.
	Cache cache.Store
}

// AzurePipelinesCredential authenticates as the app or managed identity of
// an Azure Resource Manager service connection that uses workload identity
// federation, inside an Azure Pipelines job. For every token request it
// asks Azure DevOps for a fresh OIDC token for the service connection (at
// the job's SYSTEM_OIDCREQUESTURI, authorized by the job's System.AccessToken)
// and exchanges it with Entra ID as a client assertion. Access tokens are
// cached and refreshed before they expire; it is safe for concurrent use and
// prints without the access token.
//
// Errors from Azure DevOps carry its x-vss-e2eid and x-msedge-ref headers,
// which Azure DevOps support asks for, and never the access token.
type AzurePipelinesCredential struct {
	client *entraClient
	desc   description
}

// NewAzurePipelinesCredential constructs an AzurePipelinesCredential for the
// app clientID in tenantID that trusts the service connection
// serviceConnectionID (its ID, a GUID). systemAccessToken is the job's
// System.AccessToken, which a pipeline passes to a step explicitly, for
// example as env: SYSTEM_ACCESSTOKEN: $(System.AccessToken). The OIDC request
// URI comes from the SYSTEM_OIDCREQUESTURI environment variable, which Azure
// Pipelines sets; it must be https (plain http is accepted for loopback
// hosts only, for local emulators). Pass nil to accept default options.
//
// Without SYSTEM_OIDCREQUESTURI it returns a [*CredentialUnavailableError]:
// the program is not running in an Azure Pipelines job.
func NewAzurePipelinesCredential(tenantID, clientID, serviceConnectionID, systemAccessToken string, options *AzurePipelinesCredentialOptions) (*AzurePipelinesCredential, error) {
	if options == nil {
		options = &AzurePipelinesCredentialOptions{}
	}
	co := &options.ClientOptions
	if serviceConnectionID == "" {
		return nil, errors.New(credNameAzurePipelines + ": the service connection ID is empty; give the ID of the Azure Resource Manager service connection (the resourceId in its URL, a GUID)")
	}
	if systemAccessToken == "" {
		return nil, errors.New(credNameAzurePipelines + ": the system access token is empty; pass $(System.AccessToken) to the step, for example as the SYSTEM_ACCESSTOKEN environment variable")
	}
	raw := strings.TrimSpace(co.getenvOrOS()(env.SystemOIDCRequestURI))
	if raw == "" {
		return nil, NewCredentialUnavailableError(credNameAzurePipelines, env.SystemOIDCRequestURI+
			" is not set, so this is not an Azure Pipelines job; run in a pipeline job, whose agent sets it", nil)
	}
	oidcURL, err := parseOIDCRequestURI(raw)
	if err != nil {
		return nil, err
	}
	h := httpx.New(httpx.Options{
		Transport:   co.transport(),
		Retry:       co.Retry.policy(),
		Defaults:    httpx.EntraDefaults,
		Logger:      co.logger(),
		Clock:       clock.OrReal(co.clockOrNil()),
		MaxBodySize: maxOIDCResponseSize,
	})
	src := &pipelinesAssertion{http: h, url: oidcURL, connectionID: serviceConnectionID, accessToken: systemAccessToken}
	client, err := newEntraClient(entraConfig{
		name:     credNameAzurePipelines,
		tenantID: tenantID,
		clientID: clientID,
		options:  co,
		allowed:  options.AdditionallyAllowedTenants,
		store:    options.Cache,
		grant:    federatedGrant(credNameAzurePipelines, src.get),
	})
	if err != nil {
		return nil, err
	}
	return &AzurePipelinesCredential{
		client: client,
		desc: describe(credNameAzurePipelines, "tenantID", tenantID, "clientID", clientID,
			"serviceConnectionID", serviceConnectionID, "systemAccessToken", redactIf(systemAccessToken)),
	}, nil
}

// parseOIDCRequestURI checks SYSTEM_OIDCREQUESTURI: an absolute https URL
// (http for loopback hosts), with no user information.
func parseOIDCRequestURI(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	fail := func(why string) error {
		return fmt.Errorf("%s: %s is not a valid OIDC request URI: %s; it must be the https URL the pipeline agent sets", credNameAzurePipelines, env.SystemOIDCRequestURI, why)
	}
	switch {
	case err != nil || u.Opaque != "" || u.Host == "":
		return nil, fail("it is not an absolute URL")
	case u.User != nil:
		return nil, fail("it contains user information")
	case strings.EqualFold(u.Scheme, "https"):
	case strings.EqualFold(u.Scheme, "http") && isLoopbackHost(u.Hostname()):
	default:
		return nil, fail(fmt.Sprintf("its scheme is %q; the system access token is sent only over https", u.Scheme))
	}
	u.Fragment = ""
	return u, nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pipelinesAssertion gets OIDC tokens from Azure DevOps.
type pipelinesAssertion struct {
	http         *httpx.Client
	url          *url.URL
	connectionID string
	accessToken  string
}

// get asks Azure DevOps for a new OIDC token for the service connection.
func (p *pipelinesAssertion) get(ctx context.Context) (string, error) {
	u := *p.url
	q := u.Query()
	q.Set("api-version", pipelinesAPIVersion)
	q.Set("serviceConnectionId", p.connectionID)
	u.RawQuery = q.Encode()
	resp, err := p.http.Do(ctx, &httpx.Request{
		Method: http.MethodPost,
		URL:    u.String(),
		Header: http.Header{
			"Authorization":         {"Bearer " + p.accessToken},
			"Content-Type":          {"application/json"},
			"X-Tfs-Fedauthredirect": {"Suppress"}, // 401 rather than a redirect to a sign-in page
		},
	})
	safe := httpx.SafeURL(&u)
	if err != nil {
		return "", NewAuthenticationFailedError(credNameAzurePipelines,
			fmt.Sprintf("could not get an OIDC token from Azure DevOps at %s", safe), errors.New(scrub(err.Error(), p.accessToken)))
	}
	if resp.StatusCode != http.StatusOK {
		e := NewAuthenticationFailedError(credNameAzurePipelines, "", nil)
		e.StatusCode = resp.StatusCode
		e.Response = pipelinesErrorText(resp.Body, p.accessToken)
		var b strings.Builder
		fmt.Fprintf(&b, "Azure DevOps answered %d to the OIDC token request at %s", resp.StatusCode, safe)
		for _, h := range []string{"x-vss-e2eid", "x-msedge-ref"} {
			if v := resp.Header.Get(h); v != "" {
				fmt.Fprintf(&b, ", %s: %s", h, scrub(v, p.accessToken))
			}
		}
		if e.Response != "" {
			fmt.Fprintf(&b, " (%q)", e.Response)
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			b.WriteString("; check that the step receives $(System.AccessToken) and that the pipeline may use the service connection")
		case http.StatusNotFound, http.StatusBadRequest:
			b.WriteString("; check the service connection ID and that the pipeline is authorized to use the connection")
		default:
			b.WriteString("; try again, and give Azure DevOps support the x-vss-e2eid and x-msedge-ref values if it persists")
		}
		e.Message = b.String()
		return "", e
	}
	var body struct {
		OIDCToken string `json:"oidcToken"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil || body.OIDCToken == "" {
		return "", NewAuthenticationFailedError(credNameAzurePipelines,
			fmt.Sprintf("the answer of Azure DevOps at %s holds no oidcToken; check that %s is the job's OIDC request URI", safe, env.SystemOIDCRequestURI), nil)
	}
	return body.OIDCToken, nil
}

// pipelinesErrorText reads the "message" of an Azure DevOps error answer,
// redacted and cut to 300 bytes on a rune boundary; "" when there is none.
func pipelinesErrorText(body []byte, accessToken string) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	return redact.Truncate(redact.New(accessToken).Text(e.Message), 300)
}

// GetToken returns an access token for the scopes in opts, from the cache
// when it holds one that is not due for refresh.
func (c *AzurePipelinesCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.client.getToken(ctx, opts)
}

// String describes the credential without the access token.
func (c AzurePipelinesCredential) String() string { return c.desc.String() }

// GoString is String, so that %#v shows no access token.
func (c AzurePipelinesCredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer] without the access token.
func (c AzurePipelinesCredential) LogValue() slog.Value { return c.desc.LogValue() }

var _ TokenCredential = (*AzurePipelinesCredential)(nil)
