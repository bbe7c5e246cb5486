// Package azcred gets Azure access tokens for Go programs.
//
// It has one interface, [TokenCredential], one credential type per source of
// identity (environment, workload identity, managed identity, the Azure CLI
// and the other developer tools, interactive sign-in, client secrets,
// certificates and assertions, on-behalf-of) and a chain that tries sources in
// order. Every credential caches its tokens and refreshes them before they
// expire, so callers may call GetToken for every request they send.
//
// Errors come in three classes, matched with [errors.As]:
//   - [*CredentialUnavailableError]: the source is not set up here (no
//     environment variables, no Azure CLI, no managed-identity endpoint). A
//     chain tries its next source.
//   - [*AuthenticationFailedError]: the source is set up, but the authority
//     refused or failed. A chain stops.
//   - [*AuthenticationRequiredError]: a person must sign in and automatic
//     sign-in is off. It also matches [*CredentialUnavailableError].
//
// No error message, log record or printed credential contains a secret or a
// token.
package azcred

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/redact"
)

// TokenCredential gets access tokens. Every credential in this package
// implements it, and so can users' own types (see [TokenCredentialFunc]).
//
// Implementations in this package are safe for concurrent use and cache
// their tokens: call GetToken for every request rather than keeping tokens.
type TokenCredential interface {
	// GetToken returns an access token for the scopes in opts. It returns
	// before ctx ends; a cancelled caller gets ctx's error.
	GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error)
}

// TokenCredentialFunc adapts a function to [TokenCredential].
type TokenCredentialFunc func(ctx context.Context, opts TokenRequestOptions) (AccessToken, error)

// GetToken calls f(ctx, opts).
func (f TokenCredentialFunc) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return f(ctx, opts)
}

// TokenRequestOptions describes the token a caller wants.
type TokenRequestOptions struct {
	// Scopes the token is for, such as "https://management.azure.com/.default".
	// At least one is required.
	Scopes []string

	// TenantID asks for a token from a tenant other than the credential's
	// own. It is honoured as described on [ClientOptions]' tenant rule (see
	// the package's README); empty means the credential's tenant. Managed
	// identity ignores it.
	TenantID string

	// Claims are additional claims the token must carry, as the JSON an
	// authority's claims challenge gave (already base64-decoded). A request
	// with Claims always gets a new token, which then replaces the cached one.
	Claims string

	// EnableCAE asks for a token that supports continuous access evaluation:
	// such tokens live longer and can be revoked, and the resource answers
	// with a claims challenge that the caller passes back in Claims.
	// CAE and non-CAE tokens are cached apart.
	EnableCAE bool
}

// AccessToken is a bearer token and its lifetime. It prints with its token
// redacted through every fmt verb (see [AccessToken.Format]), as a value, a
// pointer, or an exported field of a struct, slice or map, and logs
// without it through [slog]. Two things do print the token: encoding/json
// (Token is an ordinary exported field, so that tokens can be stored and
// sent), and fmt printing a struct that holds an AccessToken in an
// unexported field (fmt calls no method of an unexported field).
type AccessToken struct {
	// Token is the bearer token. Send it only to the resource it is for.
	Token string
	// ExpiresOn is when the token stops being valid.
	ExpiresOn time.Time
	// RefreshOn is when the source suggests getting a new token, or zero
	// when it made no suggestion.
	RefreshOn time.Time
}

// String returns a description of t without its token.
func (t AccessToken) String() string {
	return fmt.Sprintf("AccessToken{Token: %s, ExpiresOn: %s, RefreshOn: %s}",
		redactIf(t.Token), t.ExpiresOn.Format(time.RFC3339), t.RefreshOn.Format(time.RFC3339))
}

// GoString returns the same as String, so that %#v does not print the token.
func (t AccessToken) GoString() string { return t.String() }

// Format implements [fmt.Formatter], so that every verb prints the redacted
// description, with its flags, width and precision: %#v prints GoString;
// %s, %q, %x and %X print String as a string; %v and every other verb
// (%d, %t, ...) print String as %s would. (%p on an AccessToken value, a
// verb fmt reports as wrong without calling any method, is the exception:
// use %p on a pointer.)
func (t AccessToken) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v':
		if f.Flag('#') {
			_, _ = io.WriteString(f, t.GoString())
			return
		}
		verb = 's'
	case 's', 'q', 'x', 'X':
	default:
		verb = 's'
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), t.String())
}

// LogValue implements [slog.LogValuer] without the token.
func (t AccessToken) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("expiresOn", t.ExpiresOn), slog.Time("refreshOn", t.RefreshOn))
}

// Doer sends HTTP requests. *http.Client implements it.
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// ClientOptions contains the options every credential that talks HTTP has.
// Credentials' options structs embed it.
//
// A credential never sends a token request to another host than the one it
// addressed: a caller's *http.Client is copied and the copy refuses
// redirects, and a 3xx answer is an error. A Doer that is not an
// *http.Client must not follow redirects itself.
type ClientOptions struct {
	// Cloud is the Azure cloud to authenticate in. Default: [AzurePublic].
	Cloud Cloud

	// AuthorityHost is the Entra ID host, such as
	// "https://login.microsoftonline.com/". It must be https, with no path,
	// query or user information. Default: the AZURE_AUTHORITY_HOST
	// environment variable when set, else Cloud's authority host.
	AuthorityHost string

	// Transport sends the credential's HTTP requests. Default: azcred's own
	// client, with connection, TLS-handshake and response-header timeouts and
	// the proxy from the environment.
	Transport Doer

	// Retry sets how requests are retried. Zero fields take the source's
	// defaults.
	Retry RetryOptions

	// Logger receives the credential's diagnostics: which source and
	// identity it used, retries, refreshes. Records never contain secrets or
	// tokens. Default: discard.
	Logger *slog.Logger

	// Seams for tests in this package: the environment and the clock.
	getenv env.Getenv
	clock  clock.Clock
}

// RetryOptions sets how a credential retries a request that failed in a way
// that may pass: a transport error, or status 408, 429 or 5xx (managed
// identity adds its endpoints' own). A zero field takes the source's default.
type RetryOptions struct {
	// MaxRetries is how many times a request is retried after its first try.
	// Default: the source's (3 for Entra ID, 5 for IMDS); -1 means no retries.
	MaxRetries int

	// RetryDelay is the first backoff delay; later ones grow exponentially,
	// with jitter. Default: the source's (800 ms for Entra ID).
	RetryDelay time.Duration

	// MaxRetryDelay caps one backoff delay. A server that asks (with
	// Retry-After) to wait longer than this ends the retries at once, with
	// an error that says so. Default: the source's (60 s for Entra ID).
	MaxRetryDelay time.Duration

	// TryTimeout bounds one try. Default: the source's (30 s for Entra ID).
	TryTimeout time.Duration
}

// logger returns the configured logger or one that discards; o may be nil.
func (o *ClientOptions) logger() *slog.Logger {
	if o == nil || o.Logger == nil {
		return discardLogger
	}
	return o.Logger
}

var discardLogger = slog.New(slog.DiscardHandler)

// Cloud describes an Azure cloud: where to authenticate and the audience of
// its resource manager.
type Cloud struct {
	// Name identifies the cloud in messages.
	Name string
	// AuthorityHost is the cloud's Entra ID host, such as
	// "https://login.microsoftonline.com/".
	AuthorityHost string
	// ResourceManagerAudience is the audience of the cloud's Azure Resource
	// Manager, such as "https://management.azure.com"; credentials that sign
	// a person in ask for it when no scope is given.
	ResourceManagerAudience string
}

// The Azure clouds. A custom or sovereign cloud is a [Cloud] value of its own.
var (
	AzurePublic = Cloud{
		Name:                    "AzurePublic",
		AuthorityHost:           "https://login.microsoftonline.com/",
		ResourceManagerAudience: "https://management.azure.com",
	}
	AzureChina = Cloud{
		Name:                    "AzureChina",
		AuthorityHost:           "https://login.chinacloudapi.cn/",
		ResourceManagerAudience: "https://management.chinacloudapi.cn",
	}
	AzureGovernment = Cloud{
		Name:                    "AzureGovernment",
		AuthorityHost:           "https://login.microsoftonline.us/",
		ResourceManagerAudience: "https://management.usgovcloudapi.net",
	}
)

// cloud returns the configured cloud, [AzurePublic] when none is; o may be nil.
func (o *ClientOptions) cloud() Cloud {
	if o == nil || o.Cloud == (Cloud{}) {
		return AzurePublic
	}
	return o.Cloud
}

// authorityHost resolves the Entra ID host in the documented order — the
// AuthorityHost option, AZURE_AUTHORITY_HOST, the Cloud's, the public cloud's
// — and returns it as "https://host[:port]". o may be nil.
func (o *ClientOptions) authorityHost(getenv env.Getenv) (string, error) {
	if o != nil && o.AuthorityHost != "" {
		return parseAuthorityHost("the AuthorityHost option", o.AuthorityHost)
	}
	if v := env.OrOS(getenv)(env.AuthorityHost); v != "" {
		return parseAuthorityHost("the "+env.AuthorityHost+" environment variable", v)
	}
	c := o.cloud()
	if c.AuthorityHost == "" {
		return "", fmt.Errorf("the Cloud option %q has no AuthorityHost: set Cloud.AuthorityHost to the cloud's Entra ID host, such as %q", c.Name, AzurePublic.AuthorityHost)
	}
	return parseAuthorityHost("the Cloud option's AuthorityHost", c.AuthorityHost)
}

// parseAuthorityHost checks that raw is an https URL with a host and nothing
// else, and returns it normalised to "https://host[:port]". The error names
// where raw came from and never repeats user information or a query.
func parseAuthorityHost(from, raw string) (string, error) {
	fail := func(why string) error {
		return fmt.Errorf("%s is not a valid authority host: %s; use the form \"https://login.microsoftonline.com/\"", from, why)
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Opaque != "" {
		return "", fail("it is not a URL")
	}
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
	switch {
	case u.User != nil:
		return "", fail("it contains user information, which would be sent to the host")
	case !strings.EqualFold(u.Scheme, "https"):
		return "", fail(fmt.Sprintf("%q must use https", shown))
	case u.Host == "" || u.Hostname() == "":
		return "", fail("it has no host")
	case u.Path != "" && u.Path != "/":
		return "", fail(fmt.Sprintf("it has the path %q; give the host only (the tenant is a separate option)", u.Path))
	case u.RawQuery != "" || u.ForceQuery:
		return "", fail(fmt.Sprintf("%q has a query", shown))
	case u.Fragment != "":
		return "", fail(fmt.Sprintf("%q has a fragment", shown))
	}
	return "https://" + u.Host, nil
}

// Names of the environment variables azcred reads.
const (
	EnvTenantID                   = env.TenantID                   // AZURE_TENANT_ID
	EnvClientID                   = env.ClientID                   // AZURE_CLIENT_ID
	EnvClientSecret               = env.ClientSecret               // AZURE_CLIENT_SECRET
	EnvClientCertificatePath      = env.ClientCertificatePath      // AZURE_CLIENT_CERTIFICATE_PATH
	EnvClientCertificatePassword  = env.ClientCertificatePassword  // AZURE_CLIENT_CERTIFICATE_PASSWORD
	EnvClientSendCertificateChain = env.ClientSendCertificateChain // AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: "1" or "true"
	EnvUsername                   = env.Username                   // AZURE_USERNAME
	EnvPassword                   = env.Password                   // AZURE_PASSWORD
	EnvAuthorityHost              = env.AuthorityHost              // AZURE_AUTHORITY_HOST
	EnvRegionalAuthorityName      = env.RegionalAuthorityName      // AZURE_REGIONAL_AUTHORITY_NAME
	EnvAdditionallyAllowedTenants = env.AdditionallyAllowedTenants // AZURE_ADDITIONALLY_ALLOWED_TENANTS: ';'-separated, "*" for any
	EnvDisableMultitenantAuth     = env.DisableMultitenantAuth     // AZURE_IDENTITY_DISABLE_MULTITENANTAUTH
	EnvTokenCredentials           = env.TokenCredentials           // AZURE_TOKEN_CREDENTIALS
	EnvFederatedTokenFile         = env.FederatedTokenFile         // AZURE_FEDERATED_TOKEN_FILE
	EnvKubernetesTokenProxy       = env.KubernetesTokenProxy       // AZURE_KUBERNETES_TOKEN_PROXY
	EnvKubernetesCAFile           = env.KubernetesCAFile           // AZURE_KUBERNETES_CA_FILE
	EnvKubernetesCAData           = env.KubernetesCAData           // AZURE_KUBERNETES_CA_DATA
	EnvKubernetesSNIName          = env.KubernetesSNIName          // AZURE_KUBERNETES_SNI_NAME
	EnvSystemOIDCRequestURI       = env.SystemOIDCRequestURI       // SYSTEM_OIDCREQUESTURI (Azure Pipelines)
	EnvRegionName                 = env.RegionName                 // REGION_NAME, read when the region is "TryAutoDetect"
)

// Names of the environment variables that managed-identity hosts set.
const (
	EnvPodIdentityAuthorityHost = env.PodIdentityAuthorityHost // AZURE_POD_IDENTITY_AUTHORITY_HOST: the IMDS base URL
	EnvIdentityEndpoint         = env.IdentityEndpoint         // IDENTITY_ENDPOINT
	EnvIdentityHeader           = env.IdentityHeader           // IDENTITY_HEADER
	EnvIdentityServerThumbprint = env.IdentityServerThumbprint // IDENTITY_SERVER_THUMBPRINT
	EnvIMDSEndpoint             = env.IMDSEndpoint             // IMDS_ENDPOINT
	EnvMSIEndpoint              = env.MSIEndpoint              // MSI_ENDPOINT
	EnvMSISecret                = env.MSISecret                // MSI_SECRET
	EnvDefaultIdentityClientID  = env.DefaultIdentityClientID  // DEFAULT_IDENTITY_CLIENT_ID
)

// Error classes. Each names the credential it came from and ends with what to
// do; none contains a secret or a token.

// CredentialUnavailableError means a credential's source is not set up here:
// missing environment variables, a developer tool not installed or not signed
// in, no managed-identity endpoint. A chain tries its next source.
type CredentialUnavailableError struct {
	// Credential names the credential type, such as "AzureCLICredential".
	Credential string
	// Message says what is missing and what to do.
	Message string
	// Err is the underlying cause, or nil.
	Err error
}

// NewCredentialUnavailableError returns a [*CredentialUnavailableError] for
// the named credential. cause may be nil. Users' own credentials return it to
// let a chain try its next source.
func NewCredentialUnavailableError(credential, message string, cause error) *CredentialUnavailableError {
	return &CredentialUnavailableError{Credential: credential, Message: message, Err: cause}
}

// Error returns "<credential>: <message>[: <cause>]".
func (e *CredentialUnavailableError) Error() string { return errorText(e.Credential, e.Message, e.Err) }

// Unwrap returns the cause.
func (e *CredentialUnavailableError) Unwrap() error { return e.Err }

// NonRetriable tells the Azure SDK's pipeline not to retry the request.
func (e *CredentialUnavailableError) NonRetriable() {}

// AuthenticationFailedError means a credential's source is set up but the
// authority refused the request or failed. A chain stops on it.
type AuthenticationFailedError struct {
	// Credential names the credential type.
	Credential string
	// Message says what failed and what to do.
	Message string
	// StatusCode is the authority's HTTP status, or 0 when there was none.
	StatusCode int
	// ErrorCode is Entra ID's code, such as "AADSTS7000215", or empty.
	ErrorCode string
	// CorrelationID identifies the request to Azure support, or empty.
	CorrelationID string
	// Response is an excerpt of the authority's response body with any token
	// removed, for diagnostics; empty when there was no body.
	Response string
	// Err is the underlying cause, or nil.
	Err error
}

// NewAuthenticationFailedError returns an [*AuthenticationFailedError] for
// the named credential. cause may be nil.
func NewAuthenticationFailedError(credential, message string, cause error) *AuthenticationFailedError {
	return &AuthenticationFailedError{Credential: credential, Message: message, Err: cause}
}

// Error returns "<credential>: <message>[: <cause>]".
func (e *AuthenticationFailedError) Error() string { return errorText(e.Credential, e.Message, e.Err) }

// Unwrap returns the cause.
func (e *AuthenticationFailedError) Unwrap() error { return e.Err }

// NonRetriable tells the Azure SDK's pipeline not to retry the request.
func (e *AuthenticationFailedError) NonRetriable() {}

// AuthenticationRequiredError means a credential needs a person to sign in
// and was told not to start that itself. Call the credential's Authenticate
// method with TokenRequestOptions. It matches [*CredentialUnavailableError]
// with [errors.As] too, so a chain moves on.
type AuthenticationRequiredError struct {
	CredentialUnavailableError
	// TokenRequestOptions are those of the GetToken call that needed the
	// sign-in.
	TokenRequestOptions TokenRequestOptions
}

// NewAuthenticationRequiredError returns an [*AuthenticationRequiredError]
// for the named credential and the request that needs a sign-in. An empty
// message takes a default that says to call Authenticate.
func NewAuthenticationRequiredError(credential string, opts TokenRequestOptions, message string) *AuthenticationRequiredError {
	if message == "" {
		message = "a user must sign in to get this token and automatic sign-in is disabled; call Authenticate to sign in interactively"
	}
	opts.Scopes = slices.Clone(opts.Scopes)
	return &AuthenticationRequiredError{
		CredentialUnavailableError: CredentialUnavailableError{Credential: credential, Message: message},
		TokenRequestOptions:        opts,
	}
}

// As lets errors.As match an AuthenticationRequiredError as a
// [*CredentialUnavailableError].
func (e *AuthenticationRequiredError) As(target any) bool {
	if p, ok := target.(**CredentialUnavailableError); ok {
		*p = &e.CredentialUnavailableError
		return true
	}
	return false
}

func errorText(credential, message string, cause error) string {
	var b strings.Builder
	if credential != "" {
		b.WriteString(credential)
		b.WriteString(": ")
	}
	b.WriteString(message)
	if cause != nil {
		if message != "" {
			b.WriteString(": ")
		}
		b.WriteString(cause.Error())
	}
	return b.String()
}

// isUnavailable reports whether err is (or wraps) a [*CredentialUnavailableError].
func isUnavailable(err error) bool {
	var u *CredentialUnavailableError
	return errors.As(err, &u)
}

// Tenants.

// Well-known tenant names.
const (
	tenantOrganizations = "organizations"
	tenantCommon        = "common"
	tenantADFS          = "adfs"
)

// validateTenantID checks that id looks like a tenant: a GUID or a domain,
// made of letters, digits, '.' and '-', not starting with '-' or '.' (a
// tool would read "-x" as an option, and ".." is a dot segment in the
// authority's URL path).
func validateTenantID(credential, id string) error {
	const how = "give the directory (tenant) ID, a GUID such as \"72f988bf-86f1-41af-91ab-2d7cd011db47\", or its domain, such as \"contoso.onmicrosoft.com\""
	if id == "" {
		return fmt.Errorf("%s: the tenant ID is empty; %s", credential, how)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return fmt.Errorf("%s: the tenant ID %q contains %q, which a tenant ID cannot contain; %s", credential, id, r, how)
		}
	}
	if err := argumentShape(credential, "tenant ID", id, how); err != nil {
		return err
	}
	if id[0] == '.' || strings.Contains(id, "..") {
		return fmt.Errorf("%s: the tenant ID %q is not a domain (it starts with '.' or has an empty label); %s", credential, id, how)
	}
	return nil
}

// tenantPolicy applies the tenant rule: a request's TenantID is honoured when
// it is the configured tenant, when no tenant (or "organizations"/"common")
// is configured, or when it is in the allowed list ("*" = any); with
// AZURE_IDENTITY_DISABLE_MULTITENANTAUTH set, the configured tenant is used
// for every request.
type tenantPolicy struct {
	credential   string
	configured   string
	allowed      []string
	allowAny     bool
	disableMulti bool
}

// newTenantPolicy builds the policy of a credential. allowed is the
// credential's AdditionallyAllowedTenants option; nil means the
// AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
func newTenantPolicy(credential, configured string, allowed []string, getenv env.Getenv) tenantPolicy {
	getenv = env.OrOS(getenv)
	if allowed == nil {
		allowed = env.List(getenv(env.AdditionallyAllowedTenants))
	}
	p := tenantPolicy{
		credential:   credential,
		configured:   configured,
		disableMulti: getenv(env.DisableMultitenantAuth) != "",
	}
	for _, t := range allowed {
		if t = strings.TrimSpace(t); t == "*" {
			p.allowAny = true
		} else if t != "" {
			p.allowed = append(p.allowed, t)
		}
	}
	return p
}

// resolve returns the tenant a request for requested goes to. An empty
// result means "the source's default tenant" (developer tools).
func (p *tenantPolicy) resolve(requested string) (string, error) {
	if requested == "" || p.disableMulti {
		return p.configured, nil
	}
	if err := validateTenantID(p.credential, requested); err != nil {
		return "", err
	}
	if strings.EqualFold(requested, p.configured) || p.configured == "" ||
		strings.EqualFold(p.configured, tenantOrganizations) || strings.EqualFold(p.configured, tenantCommon) ||
		p.allowAny || slices.ContainsFunc(p.allowed, func(t string) bool { return strings.EqualFold(t, requested) }) {
		return requested, nil
	}
	return "", fmt.Errorf("%s is not configured to get tokens for tenant %q: add it to the AdditionallyAllowedTenants option or the %s environment variable (';'-separated), or add \"*\" to allow any tenant",
		p.credential, requested, env.AdditionallyAllowedTenants)
}

// argumentShape refuses a value that a developer tool would read as an
// option ("-x", "--tenant") or that a URL path would read as a dot segment
// ("." and ".."): none is a tenant, subscription or scope. what names the
// value ("tenant ID"); how says what to give instead.
func argumentShape(credential, what, v, how string) error {
	switch {
	case strings.HasPrefix(v, "-"):
		return fmt.Errorf("%s: the %s %q starts with '-', which a %s cannot (a tool would read it as an option); %s", credential, what, v, what, how)
	case v == "." || v == "..":
		return fmt.Errorf("%s: the %s %q is a path segment, not a %s; %s", credential, what, v, what, how)
	}
	return nil
}

// Scopes.

// validateScopes checks a request's scopes: at least one, none empty, each
// printable ASCII without spaces or characters a URI cannot hold, none
// starting with '-' or being "." or "..". It runs on
// every GetToken, so it checks bytes against a table.
func validateScopes(credential string, scopes []string) error {
	if len(scopes) == 0 {
		return fmt.Errorf("%s: GetToken needs at least one scope, such as \"https://management.azure.com/.default\"", credential)
	}
	for _, s := range scopes {
		if s == "" {
			return fmt.Errorf("%s: a scope is empty; give scopes such as \"https://management.azure.com/.default\"", credential)
		}
		if s[0] == '-' || s == "." || s == ".." {
			return argumentShape(credential, "scope", s, "give scopes such as \"https://management.azure.com/.default\"")
		}
		for i := 0; i < len(s); i++ {
			if !scopeByte[s[i]] {
				r, _ := utf8.DecodeRuneInString(s[i:])
				return fmt.Errorf("%s: the scope %q contains %q, which a scope cannot contain; give scopes such as \"https://management.azure.com/.default\"", credential, s, r)
			}
		}
	}
	return nil
}

// scopeByte marks the bytes a scope may contain: printable ASCII but space
// and "<>\\^`{|}.
var scopeByte = func() (t [256]bool) {
	for b := '!'; b <= '~'; b++ {
		t[b] = !strings.ContainsRune("\"<>\\^`{|}", b)
	}
	return t
}()

// Redaction.

const redacted = redact.Mark

// redactIf returns "REDACTED" for a non-empty secret and "" for an empty one,
// so a description shows whether a secret is set without showing it.
func redactIf(secret string) string {
	if secret == "" {
		return `""`
	}
	return redacted
}

// description is what a credential shows of itself in String, GoString and
// LogValue: its type name and the fields that are safe to show. Secrets are
// included only through [redactIf].
type description struct {
	name   string
	fields []field
}

type field struct{ key, value string }

func describe(name string, keyValues ...string) description {
	d := description{name: name}
	for i := 0; i+1 < len(keyValues); i += 2 {
		d.fields = append(d.fields, field{keyValues[i], keyValues[i+1]})
	}
	return d
}

// String renders "Name{key: value, ...}".
func (d description) String() string {
	var b strings.Builder
	b.WriteString(d.name)
	b.WriteByte('{')
	for i, f := range d.fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.key)
		b.WriteString(": ")
		b.WriteString(f.value)
	}
	b.WriteByte('}')
	return b.String()
}

// LogValue renders a group with the credential's name and fields.
func (d description) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(d.fields)+1)
	attrs = append(attrs, slog.String("credential", d.name))
	for _, f := range d.fields {
		attrs = append(attrs, slog.String(f.key, f.value))
	}
	return slog.GroupValue(attrs...)
}

// scrub replaces every occurrence of each non-empty secret in s, in the
// encodings a server echoes it in, and every token shape, with "REDACTED"
// (see internal/redact). It is the last guard on text that came from elsewhere (a tool's
// stderr, a server's body) before it goes into an error or a log record.
func scrub(s string, secrets ...string) string {
	return redact.New(secrets...).String(s)
}
