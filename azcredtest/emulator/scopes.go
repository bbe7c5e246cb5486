package emulator

import (
	"strings"
)

// graphResource is where Entra sends bare scopes such as "User.Read".
const graphResource = "https://graph.microsoft.com"

// wellKnownResources are resources Entra knows in every tenant, by canonical
// form (lower case, no trailing slash), with their application IDs.
var wellKnownResources = map[string]bool{
	"https://management.azure.com":              true,
	"https://management.core.windows.net":       true,
	"https://vault.azure.net":                   true,
	"https://storage.azure.com":                 true,
	"https://graph.microsoft.com":               true,
	"https://graph.windows.net":                 true,
	"https://database.windows.net":              true,
	"https://cognitiveservices.azure.com":       true,
	"https://servicebus.azure.net":              true,
	"https://eventhubs.azure.net":               true,
	"https://monitor.azure.com":                 true,
	"https://api.loganalytics.io":               true,
	"https://ossrdbms-aad.database.windows.net": true,
	"https://search.azure.com":                  true,
	"https://batch.core.windows.net":            true,
	"https://redis.azure.com":                   true,
	"https://dev.azuresynapse.net":              true,
	"https://kusto.kusto.windows.net":           true,
	"https://digitaltwins.azure.net":            true,
	"https://appconfig.azure.com":               true,
	"https://cosmos.azure.com":                  true,
	"https://ai.azure.com":                      true,
	"499b84ac-1321-427f-aa17-267ca6975798":      true, // Azure DevOps
	"00000003-0000-0000-c000-000000000000":      true, // Microsoft Graph
	"797f4846-ba00-4fd7-ba43-dac1f8f63013":      true, // Azure Resource Manager
	"cfa8b339-82a2-471a-a3c9-0fc0be7a4093":      true, // Azure Key Vault
	"e406a681-f3d4-42a8-90b6-c2b029497af1":      true, // Azure Storage
}

// wellKnownHostSuffixes are hosts of per-account endpoints that Entra also
// accepts as resources (https://<account>.blob.core.windows.net/.default).
var wellKnownHostSuffixes = []string{
	".blob.core.windows.net", ".queue.core.windows.net", ".table.core.windows.net",
	".file.core.windows.net", ".dfs.core.windows.net", ".vault.azure.net",
	".servicebus.windows.net", ".documents.azure.com", ".azurecr.io",
	".kusto.windows.net", ".cognitiveservices.azure.com", ".openai.azure.com",
}

var reservedScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true, "email": true}

// scopeRequest is a parsed "scope" parameter: one resource, its permissions
// and the OpenID Connect scopes asked alongside.
type scopeRequest struct {
	resource string   // as the client wrote it: the token's "aud"
	perms    []string // permissions on resource, ".default" included
	written  []string // the scopes as the client wrote them, one per perm
	oidc     map[string]bool
}

func canonicalResource(r string) string { return strings.TrimRight(strings.ToLower(r), "/") }

// splitScope returns a scope's resource and permission: everything up to its
// last '/' after the host, and the rest. A bare permission belongs to Graph.
func splitScope(s string) (resource, perm string, ok bool) {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		j := strings.LastIndex(rest, "/")
		if j < 0 {
			return "", "", false
		}
		resource, perm = s[:i+3+j], rest[j+1:]
	} else if j := strings.LastIndex(s, "/"); j >= 0 {
		resource, perm = s[:j], s[j+1:]
	} else {
		resource, perm = graphResource, s
	}
	if resource == "" || perm == "" || strings.HasSuffix(resource, ":/") {
		return "", "", false
	}
	return resource, perm, true
}

// parseScopes reads a scope parameter. appOnly demands "/.default" scopes, as
// Entra does for client credentials. The resource must be known in t.
func (e *Emulator) parseScopes(raw string, t *tenant, appOnly bool) (*scopeRequest, *stsError) {
	fields := strings.Fields(raw)
	if len(fields) == 0 {
		return nil, errMissingParam("scope")
	}
	sr := &scopeRequest{oidc: map[string]bool{}}
	key := ""
	for _, s := range fields {
		if reservedScopes[strings.ToLower(s)] {
			sr.oidc[strings.ToLower(s)] = true
			continue
		}
		res, perm, ok := splitScope(s)
		if !ok {
			return nil, errInvalidScope(s)
		}
		k := canonicalResource(res)
		switch {
		case key == "":
			key, sr.resource = k, res
		case k != key:
			return nil, errMultipleResources(raw)
		}
		if appOnly && perm != ".default" {
			return nil, errScopeNotDefault(s)
		}
		sr.perms = append(sr.perms, perm)
		sr.written = append(sr.written, s)
	}
	if key == "" {
		if appOnly {
			return nil, errInvalidScope(raw)
		}
		// Only OpenID Connect scopes: Entra answers with a Graph token.
		sr.resource, key = graphResource, canonicalResource(graphResource)
		sr.perms = []string{"User.Read"}
		sr.written = []string{"User.Read"}
	}
	if !e.knownResource(key, t) {
		return nil, errUnknownResource(sr.resource, t.id)
	}
	return sr, nil
}

func (e *Emulator) knownResource(key string, t *tenant) bool {
	if wellKnownResources[key] {
		return true
	}
	if host, ok := strings.CutPrefix(key, "https://"); ok && !strings.Contains(host, "/") {
		for _, suf := range wellKnownHostSuffixes {
			if strings.HasSuffix(host, suf) {
				return true
			}
		}
	}
	return e.resourceApp(key, t) != nil
}

// resourceApp finds the app whose client ID or identifier URI is key: in t
// first, then in any tenant (a multi-tenant app).
func (e *Emulator) resourceApp(key string, t *tenant) *App {
	e.mu.Lock()
	defer e.mu.Unlock()
	match := func(a *App) bool {
		if strings.EqualFold(a.ClientID, key) {
			return true
		}
		for _, u := range a.IdentifierURIs {
			if canonicalResource(u) == key {
				return true
			}
		}
		return false
	}
	for _, a := range t.apps {
		if match(a) {
			return a
		}
	}
	for _, other := range e.tenants {
		for _, a := range other.apps {
			if match(a) {
				return a
			}
		}
	}
	return nil
}

// grantedScopes renders the permissions of a user token: "scp" (short names)
// and the "scope" of the response: each scope as the client wrote it (MSAL
// looks for them among the granted scopes), then the OpenID scopes. A
// ".default" scope stands for "user_impersonation" (Graph: "User.Read"),
// which is granted too.
func (sr *scopeRequest) grantedScopes() (scp, scope string) {
	var short, full []string
	isGraph := canonicalResource(sr.resource) == canonicalResource(graphResource)
	for i, p := range sr.perms {
		full = append(full, sr.written[i])
		if p != ".default" {
			short = append(short, p)
			continue
		}
		p = "user_impersonation"
		if isGraph {
			p = "User.Read"
		}
		short = append(short, p)
		full = append(full, strings.TrimSuffix(sr.written[i], ".default")+p)
	}
	for _, o := range []string{"openid", "profile", "email", "offline_access"} {
		if sr.oidc[o] {
			full = append(full, o)
		}
	}
	return strings.Join(short, " "), strings.Join(full, " ")
}
