// Package oauth is azcred's Microsoft Entra ID token-endpoint client: it
// builds the confidential-client grants (client credentials with a secret or
// an assertion, on-behalf-of, password), sends each as exactly one logical
// request through internal/httpx (no discovery round trips), and parses the
// answer into a Token or an *Error. It takes every setting as a parameter;
// the root package reads the environment and wraps the errors.
package oauth

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// TryAutoDetect is the AZURE_REGIONAL_AUTHORITY_NAME value that asks for the
// region to be detected. azcred reads it from REGION_NAME only; it never asks
// the instance metadata service.
const TryAutoDetect = "TryAutoDetect"

// ADFSTenant is the tenant name that selects an AD FS authority.
const ADFSTenant = "adfs"

var (
	validTenant = regexp.MustCompile(`^[A-Za-z0-9.-]+$`)
	// validRegion is a lowercase DNS label, e.g. "westus2".
	validRegion = regexp.MustCompile(`^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$`)
)

// publicCloudHosts are the public cloud's authority hosts; only they have
// regional endpoints, at <region>.login.microsoft.com.
var publicCloudHosts = map[string]bool{
	"login.microsoftonline.com": true,
	"login.microsoft.com":       true,
	"login.windows.net":         true,
	"sts.windows.net":           true,
}

// ResolveRegion returns the region to send token requests to, given the
// value of AZURE_REGIONAL_AUTHORITY_NAME: "" means none; TryAutoDetect (any
// case) means the value of REGION_NAME read through getenv (nil means
// os.Getenv), or none when that is unset or not a region name; any other
// value is returned as is, for TokenEndpoint to check.
func ResolveRegion(value string, getenv func(string) string) string {
	value = strings.TrimSpace(value)
	if !strings.EqualFold(value, TryAutoDetect) {
		return value
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	region := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(getenv("REGION_NAME")), " ", ""))
	if !validRegion.MatchString(region) {
		return ""
	}
	return region
}

// TokenEndpoint returns the token endpoint of tenant at the authority host
// (an https URL such as "https://login.microsoftonline.com/", or a bare host
// name): https://<host>/<tenant>/oauth2/v2.0/token, or
// https://<host>/adfs/oauth2/token for the tenant "adfs". A non-empty region
// (see ResolveRegion) moves public-cloud requests to
// https://<region>.login.microsoft.com/...; other clouds and AD FS ignore it.
func TokenEndpoint(host, tenant, region string) (string, error) {
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u, err := url.Parse(host)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", errors.New(`the authority host must be an https URL such as "https://login.microsoftonline.com/"`)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("the authority host must use https, not %q: change the authority host (AZURE_AUTHORITY_HOST or ClientOptions.AuthorityHost)", u.Scheme)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("the authority host must have no user information, query or fragment: change the authority host (AZURE_AUTHORITY_HOST or ClientOptions.AuthorityHost)")
	}
	if !validTenant.MatchString(tenant) {
		return "", errors.New("invalid tenant ID: it may contain only letters, digits, '.' and '-'; find your tenant ID in the Azure portal under Microsoft Entra ID > Overview")
	}
	if tenant[0] == '.' || tenant[0] == '-' || strings.Contains(tenant, "..") {
		// "." and ".." would be dot segments of the path.
		return "", errors.New("invalid tenant ID: it may not start with '.' or '-' or have an empty label; find your tenant ID in the Azure portal under Microsoft Entra ID > Overview")
	}
	base := strings.TrimRight(u.Path, "/")
	if strings.EqualFold(tenant, ADFSTenant) {
		return "https://" + u.Host + base + "/adfs/oauth2/token", nil
	}
	hostname := u.Host
	if region != "" {
		if !validRegion.MatchString(region) {
			return "", fmt.Errorf("invalid region %q in AZURE_REGIONAL_AUTHORITY_NAME: use a lowercase Azure region name such as \"westus2\", or %q", region, TryAutoDetect)
		}
		if publicCloudHosts[strings.ToLower(u.Hostname())] && u.Port() == "" {
			hostname = region + ".login.microsoft.com"
		}
	}
	return "https://" + hostname + base + "/" + tenant + "/oauth2/v2.0/token", nil
}

// IsADFS reports whether endpoint is an AD FS token endpoint.
func IsADFS(endpoint string) bool {
	return strings.HasSuffix(strings.ToLower(endpoint), "/adfs/oauth2/token")
}
