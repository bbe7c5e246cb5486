package azcred

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/azcred/azcred/internal/env"
)

const credNameEnvironment = "EnvironmentCredential"

// maxCertificateFileSize bounds the certificate file EnvironmentCredential
// reads: PEM and PKCS#12 files with a chain are a few kilobytes.
const maxCertificateFileSize = 1 << 20

// EnvironmentCredentialOptions contains optional parameters for
// EnvironmentCredential.
type EnvironmentCredentialOptions struct {
	ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// DisableInstanceDiscovery is accepted for compatibility with azidentity.
	// azcred never sends discovery requests, so it has no effect. Default:
	// false.
	DisableInstanceDiscovery bool
}

// EnvironmentCredential authenticates with the identity that environment
// variables describe. It reads AZURE_TENANT_ID and AZURE_CLIENT_ID and then
// takes the first of these that is configured:
//
//  1. AZURE_CLIENT_SECRET: a [ClientSecretCredential];
//  2. AZURE_CLIENT_CERTIFICATE_PATH (a PEM or PKCS#12 file), with
//     AZURE_CLIENT_CERTIFICATE_PASSWORD when the file is encrypted and
//     AZURE_CLIENT_SEND_CERTIFICATE_CHAIN ("1" or "true"): a
//     [ClientCertificateCredential];
//  3. AZURE_USERNAME and AZURE_PASSWORD: a [UsernamePasswordCredential]
//     (AZURE_TENANT_ID is optional here and defaults to "organizations").
//
// When several are configured it uses the first and logs a warning that
// names the variables it ignored. AZURE_AUTHORITY_HOST,
// AZURE_REGIONAL_AUTHORITY_NAME and AZURE_ADDITIONALLY_ALLOWED_TENANTS apply
// as for the credential it builds.
//
// Values are trimmed of surrounding whitespace (spaces, tabs, line breaks),
// which values copied from files or Kubernetes secrets often carry; a value
// that is only whitespace counts as unset. AZURE_PASSWORD and
// AZURE_CLIENT_CERTIFICATE_PASSWORD lose surrounding line breaks only, since
// a password may begin or end with a space.
//
// The environment is read once, by the constructor. GetToken delegates to
// the credential it built, which caches the tokens; it is safe for
// concurrent use. It prints without secrets.
type EnvironmentCredential struct {
	cred TokenCredential
	desc description
}

// envMode is one way the environment can configure a credential.
type envMode struct {
	what     string   // "a client secret"
	trigger  []string // any of these set selects the mode
	required []string // all needed
}

var envModes = []envMode{
	{"a client secret", []string{env.ClientSecret}, []string{env.TenantID, env.ClientID, env.ClientSecret}},
	{"a client certificate", []string{env.ClientCertificatePath}, []string{env.TenantID, env.ClientID, env.ClientCertificatePath}},
	{"a username and password", []string{env.Username, env.Password}, []string{env.ClientID, env.Username, env.Password}},
}

// envVarsShown are the variables an incomplete-configuration message
// reports as set; their values never appear.
var envVarsShown = []string{
	env.TenantID, env.ClientID, env.ClientSecret, env.ClientCertificatePath,
	env.ClientCertificatePassword, env.Username, env.Password,
}

// readEnvValue reads a variable and trims it as EnvironmentCredential
// documents: passwords lose surrounding line breaks only, others all
// surrounding whitespace.
func readEnvValue(getenv env.Getenv, name string) string {
	v := getenv(name)
	if name == env.Password || name == env.ClientCertificatePassword {
		if strings.TrimSpace(v) == "" {
			return ""
		}
		return strings.Trim(v, "\r\n")
	}
	return strings.TrimSpace(v)
}

// NewEnvironmentCredential constructs an EnvironmentCredential from the
// environment. Pass nil to accept default options.
//
// When the environment configures no credential (no AZURE_CLIENT_SECRET,
// AZURE_CLIENT_CERTIFICATE_PATH, AZURE_USERNAME or AZURE_PASSWORD), it
// returns a [*CredentialUnavailableError] that names the variables that are
// set and those that are missing (never their values). When one of those
// variables selects a method that cannot be used (a variable it needs is
// missing, the certificate file is missing or unreadable, the certificate
// password is wrong or the file holds no private key, the tenant is
// malformed) the error is not unavailable: its first line names
// EnvironmentCredential and the variable, and says what to fix, and
// [DefaultAzureCredential] stops on it.
func NewEnvironmentCredential(options *EnvironmentCredentialOptions) (*EnvironmentCredential, error) {
	if options == nil {
		options = &EnvironmentCredentialOptions{}
	}
	co := options.ClientOptions
	getenv := co.getenvOrOS()
	vals := map[string]string{}
	var set []string
	for _, name := range envVarsShown {
		if v := readEnvValue(getenv, name); v != "" {
			vals[name] = v
			set = append(set, name)
		}
	}
	var chosen *envMode
	var ignored []string
	for i := range envModes {
		m := &envModes[i]
		var triggered []string
		for _, t := range m.trigger {
			if vals[t] != "" {
				triggered = append(triggered, t)
			}
		}
		if len(triggered) == 0 {
			continue
		}
		if chosen == nil {
			chosen = m
		} else {
			ignored = append(ignored, triggered...)
		}
	}
	if chosen == nil {
		var missing []string
		for _, name := range []string{env.TenantID, env.ClientID} {
			if vals[name] == "" {
				missing = append(missing, name)
			}
		}
		missing = append(missing, fmt.Sprintf("one of %s, %s, or %s and %s", env.ClientSecret, env.ClientCertificatePath, env.Username, env.Password))
		return nil, NewCredentialUnavailableError(credNameEnvironment, fmt.Sprintf(
			"the environment configures no credential (set: %s; missing: %s); set the missing variables to use a service principal",
			listOrNone(set), strings.Join(missing, ", ")), nil)
	}
	var missing []string
	for _, r := range chosen.required {
		if vals[r] == "" {
			missing = append(missing, r)
		}
	}
	selectedBy := strings.Join(triggeredBy(chosen, vals), " and ")
	if len(missing) > 0 {
		// The operator chose this method: a chain must stop here rather
		// than authenticate as some other identity.
		return nil, fmt.Errorf("%s: %s selects %s, but %s %s not set (set: %s); set %s, or unset %s if you do not mean to use %s",
			credNameEnvironment, selectedBy, chosen.what, strings.Join(missing, ", "), plural(len(missing), "is", "are"),
			listOrNone(set), strings.Join(missing, ", "), selectedBy, chosen.what)
	}
	if t := vals[env.TenantID]; t != "" {
		if err := validateTenantID(credNameEnvironment+": "+env.TenantID, t); err != nil {
			return nil, err
		}
	}
	logger := co.logger()
	if len(ignored) > 0 {
		logger.Warn(credNameEnvironment+": several credentials are configured; using "+chosen.what+" and ignoring the others: unset the variables you do not mean to use",
			slog.String("ignored", strings.Join(ignored, ", ")))
	}
	tenant, client := vals[env.TenantID], vals[env.ClientID]
	var (
		cred  TokenCredential
		inner string
		err   error
	)
	switch chosen.trigger[0] {
	case env.ClientSecret:
		inner = credNameSecret
		cred, err = NewClientSecretCredential(tenant, client, vals[env.ClientSecret], &ClientSecretCredentialOptions{
			ClientOptions: co, AdditionallyAllowedTenants: options.AdditionallyAllowedTenants, DisableInstanceDiscovery: options.DisableInstanceDiscovery,
		})
	case env.ClientCertificatePath:
		inner = credNameCertificate
		cred, err = environmentCertificate(tenant, client, vals, getenv, options)
	default:
		inner = credNameUsernamePassword
		cred, err = NewUsernamePasswordCredential(tenant, client, vals[env.Username], vals[env.Password], &UsernamePasswordCredentialOptions{
			ClientOptions: co, AdditionallyAllowedTenants: options.AdditionallyAllowedTenants, DisableInstanceDiscovery: options.DisableInstanceDiscovery,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", credNameEnvironment, err)
	}
	logger.Debug(credNameEnvironment+" will authenticate with "+inner, slog.String("tenantID", tenant), slog.String("clientID", client))
	return &EnvironmentCredential{
		cred: cred,
		desc: describe(credNameEnvironment, "using", fmt.Sprint(cred)),
	}, nil
}

// environmentCertificate reads the certificate file the environment names
// and builds the certificate credential.
func environmentCertificate(tenant, client string, vals map[string]string, getenv env.Getenv, options *EnvironmentCredentialOptions) (TokenCredential, error) {
	path := vals[env.ClientCertificatePath]
	data, err := readCertificateFile(path)
	if err != nil {
		return nil, err
	}
	var password []byte
	if p := vals[env.ClientCertificatePassword]; p != "" {
		password = []byte(p)
	}
	certs, key, err := ParseCertificates(data, password)
	if err != nil {
		return nil, fmt.Errorf("the certificate file %q (%s) cannot be used: %w; check the file, and %s when it is encrypted",
			path, env.ClientCertificatePath, err, env.ClientCertificatePassword)
	}
	return NewClientCertificateCredential(tenant, client, certs, key, &ClientCertificateCredentialOptions{
		ClientOptions:              options.ClientOptions,
		AdditionallyAllowedTenants: options.AdditionallyAllowedTenants,
		DisableInstanceDiscovery:   options.DisableInstanceDiscovery,
		SendCertificateChain:       env.Bool(getenv(env.ClientSendCertificateChain)),
	})
}

// readCertificateFile reads a certificate file of at most
// maxCertificateFileSize bytes.
func readCertificateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open the certificate file %q (%s): %w; set it to the path of a PEM or PKCS#12 file", path, env.ClientCertificatePath, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read the certificate file %q (%s): %w", path, env.ClientCertificatePath, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("the certificate file %q (%s) is a directory; set it to the path of a PEM or PKCS#12 file", path, env.ClientCertificatePath)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCertificateFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the certificate file %q (%s): %w", path, env.ClientCertificatePath, err)
	}
	if len(data) > maxCertificateFileSize {
		return nil, fmt.Errorf("the certificate file %q (%s) is larger than %d bytes, too large for a certificate; set it to the path of a PEM or PKCS#12 file", path, env.ClientCertificatePath, maxCertificateFileSize)
	}
	return data, nil
}

// triggeredBy returns the variables that selected mode m.
func triggeredBy(m *envMode, vals map[string]string) []string {
	var out []string
	for _, t := range m.trigger {
		if vals[t] != "" {
			out = append(out, t)
		}
	}
	return out
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// GetToken returns an access token for the scopes in opts from the
// credential the environment configured, which caches it.
func (c *EnvironmentCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.cred.GetToken(ctx, opts)
}

// String describes the credential and the one it uses, without secrets.
func (c EnvironmentCredential) String() string { return c.desc.String() }

// GoString is String, so that %#v shows no secret.
func (c EnvironmentCredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer] without secrets.
func (c EnvironmentCredential) LogValue() slog.Value { return c.desc.LogValue() }

var _ TokenCredential = (*EnvironmentCredential)(nil)
