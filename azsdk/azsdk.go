// Package azsdk connects azcred to the Azure SDK for Go.
//
// [Credential] turns any azcred credential into an azcore.TokenCredential,
// which every Azure SDK client accepts:
//
//	cred, err := azcred.NewDefaultAzureCredential(nil)
//	...
//	client, err := azblob.NewClient(accountURL, azsdk.Credential(cred), nil)
//
// [FromAzcore] goes the other way, so that an azcore credential (one of
// azidentity's, say) can sit in an azcred chain or behind an
// [azcred.BearerTransport]. [CloudFromAzcore] turns an azcore
// cloud.Configuration into the [azcred.Cloud] that azcred's options take.
//
// Both adapters copy every field of the request and of the token. Errors keep
// their class across the boundary: an azcred error returned through
// [Credential] is the same value, so errors.As finds
// [*azcred.CredentialUnavailableError] or [*azcred.AuthenticationFailedError]
// in the error an SDK client returns, and azcore's retry policy sees their
// NonRetriable marker. Errors coming through [FromAzcore] are mapped to
// azcred's classes with the original kept as the cause (see [FromAzcore]).
//
// This package lives in its own module, so that azcred's core module does not
// depend on azcore.
package azsdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// fromAzcoreName names the adapter in the errors it returns.
const fromAzcoreName = "azsdk.FromAzcore"

// azidentityPath is the import path of the Azure SDK's identity module, whose
// error types FromAzcore recognises without importing it.
const azidentityPath = "github.com/Azure/azure-sdk-for-go/sdk/azidentity"

// Credential returns an azcore.TokenCredential that gets its tokens from c,
// for Azure SDK clients. The request's Scopes, TenantID, Claims and EnableCAE
// and the token's Token, ExpiresOn and RefreshOn are passed as they are.
// Errors are returned unchanged: azcred's error classes implement azcore's
// NonRetriable marker, so a pipeline does not retry a request whose
// credential is unavailable, and errors.As finds them in the error the SDK
// client returns.
//
// Credential(FromAzcore(x)) returns x itself, and Credential(nil) returns nil
// (an SDK client then sends requests without tokens). The result is safe for
// concurrent use when c is, and adds no caching: c caches.
func Credential(c azcred.TokenCredential) azcore.TokenCredential {
	switch c := c.(type) {
	case nil:
		return nil
	case fromAzcore:
		return c.cred
	}
	return toAzcore{c}
}

// toAzcore is an azcred credential seen as an azcore one.
type toAzcore struct{ cred azcred.TokenCredential }

// GetToken implements azcore.TokenCredential.
func (a toAzcore) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := a.cred.GetToken(ctx, azcred.TokenRequestOptions{
		Scopes:    opts.Scopes,
		TenantID:  opts.TenantID,
		Claims:    opts.Claims,
		EnableCAE: opts.EnableCAE,
	})
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: tok.Token, ExpiresOn: tok.ExpiresOn, RefreshOn: tok.RefreshOn}, nil
}

// String describes the adapter and, when it describes itself, the credential
// inside; it never shows a secret or a token.
func (a toAzcore) String() string {
	if s, ok := a.cred.(fmt.Stringer); ok {
		return "azsdk.Credential(" + s.String() + ")"
	}
	return "azsdk.Credential(TokenCredential)"
}

// GoString returns the same as String.
func (a toAzcore) GoString() string { return a.String() }

// FromAzcore returns an azcred.TokenCredential that gets its tokens from c,
// an Azure SDK credential. Fields are passed as [Credential] passes them.
//
// Its errors always belong to one of azcred's classes, with c's error as the
// cause (so errors.As still finds the original type, and its NonRetriable
// marker when it has one):
//   - azidentity's credential-unavailable errors (including those of
//     azidentity.NewCredentialUnavailableError) become
//     [*azcred.CredentialUnavailableError], so an azcred chain moves on;
//   - azidentity's AuthenticationRequiredError becomes
//     [*azcred.AuthenticationRequiredError] with the same request options;
//   - azcred's own errors (from a credential wrapped twice) are returned
//     unchanged;
//   - the caller's context error, when its context has ended, is returned
//     unchanged;
//   - anything else, azidentity's AuthenticationFailedError included,
//     becomes [*azcred.AuthenticationFailedError], with the HTTP status of
//     the response azidentity attached when there is one.
//
// azidentity's types are recognised by their package path and name, so this
// package does not depend on azidentity.
//
// FromAzcore(Credential(x)) returns x itself, and FromAzcore(nil) returns nil.
// The result is safe for concurrent use when c is, and adds no caching.
func FromAzcore(c azcore.TokenCredential) azcred.TokenCredential {
	switch c := c.(type) {
	case nil:
		return nil
	case toAzcore:
		return c.cred
	}
	return fromAzcore{c}
}

// fromAzcore is an azcore credential seen as an azcred one.
type fromAzcore struct{ cred azcore.TokenCredential }

// GetToken implements azcred.TokenCredential.
func (a fromAzcore) GetToken(ctx context.Context, opts azcred.TokenRequestOptions) (azcred.AccessToken, error) {
	tok, err := a.cred.GetToken(ctx, policy.TokenRequestOptions{
		Scopes:    opts.Scopes,
		TenantID:  opts.TenantID,
		Claims:    opts.Claims,
		EnableCAE: opts.EnableCAE,
	})
	if err != nil {
		return azcred.AccessToken{}, mapAzcoreError(ctx, err)
	}
	return azcred.AccessToken{Token: tok.Token, ExpiresOn: tok.ExpiresOn, RefreshOn: tok.RefreshOn}, nil
}

// String describes the adapter without looking inside the azcore credential,
// whose printed form might not be redacted.
func (a fromAzcore) String() string { return "azsdk.FromAzcore(azcore.TokenCredential)" }

// GoString returns the same as String.
func (a fromAzcore) GoString() string { return a.String() }

// mapAzcoreError puts an azcore credential's error in azcred's classes.
func mapAzcoreError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return err
	}
	var unavailable *azcred.CredentialUnavailableError
	var failed *azcred.AuthenticationFailedError
	if errors.As(err, &unavailable) || errors.As(err, &failed) {
		return err
	}
	var mapped error
	walkErrors(err, func(e error) bool {
		t := reflect.TypeOf(e)
		if t.Kind() != reflect.Pointer || t.Elem().PkgPath() != azidentityPath {
			return true
		}
		switch t.Elem().Name() {
		case "AuthenticationRequiredError":
			mapped = authenticationRequired(e, err)
		case "credentialUnavailableError":
			mapped = azcred.NewCredentialUnavailableError(fromAzcoreName, "the Azure SDK credential is not available here", err)
		case "AuthenticationFailedError":
			f := azcred.NewAuthenticationFailedError(fromAzcoreName, "the Azure SDK credential could not authenticate", err)
			f.StatusCode = responseStatus(e)
			mapped = f
		default:
			return true
		}
		return false
	})
	if mapped != nil {
		return mapped
	}
	return azcred.NewAuthenticationFailedError(fromAzcoreName, "the Azure SDK credential returned an error", err)
}

// authenticationRequired maps azidentity's AuthenticationRequiredError e
// (found in the tree of err) to azcred's, keeping its request options.
func authenticationRequired(e, err error) error {
	var tro policy.TokenRequestOptions
	if f := reflect.ValueOf(e).Elem().FieldByName("TokenRequestOptions"); f.IsValid() && f.CanInterface() {
		tro, _ = f.Interface().(policy.TokenRequestOptions)
	}
	r := azcred.NewAuthenticationRequiredError(fromAzcoreName, azcred.TokenRequestOptions{
		Scopes:    tro.Scopes,
		TenantID:  tro.TenantID,
		Claims:    tro.Claims,
		EnableCAE: tro.EnableCAE,
	}, "the Azure SDK credential needs a user to sign in; call that credential's Authenticate method")
	r.Err = err
	return r
}

// responseStatus returns the status of the *http.Response in e's exported
// RawResponse field, or 0.
func responseStatus(e error) int {
	f := reflect.ValueOf(e).Elem().FieldByName("RawResponse")
	if !f.IsValid() || !f.CanInterface() {
		return 0
	}
	if res, ok := f.Interface().(*http.Response); ok && res != nil {
		return res.StatusCode
	}
	return 0
}

// walkErrors calls visit for err and every error it wraps, depth first,
// until visit returns false.
func walkErrors(err error, visit func(error) bool) bool {
	if err == nil {
		return true
	}
	if !visit(err) {
		return false
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return walkErrors(u.Unwrap(), visit)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if !walkErrors(e, visit) {
				return false
			}
		}
	}
	return true
}

// CloudFromAzcore returns the azcred.Cloud of an azcore cloud configuration:
// its authority host, and the audience of its resource manager (from
// c.Services[cloud.ResourceManager], or the well-known cloud's when the
// configuration is one of azcore's and has no such entry). A configuration
// whose authority host is that of the public, China or US Government cloud
// takes azcred's name for it ("AzurePublic", ...); any other is "Custom".
// An empty authority host stays empty, and azcred's constructors then say so.
func CloudFromAzcore(c cloud.Configuration) azcred.Cloud {
	out := azcred.Cloud{Name: "Custom", AuthorityHost: c.ActiveDirectoryAuthorityHost}
	for _, known := range []azcred.Cloud{azcred.AzurePublic, azcred.AzureChina, azcred.AzureGovernment} {
		if sameHost(known.AuthorityHost, c.ActiveDirectoryAuthorityHost) {
			out.Name = known.Name
			out.ResourceManagerAudience = known.ResourceManagerAudience
		}
	}
	if arm, ok := c.Services[cloud.ResourceManager]; ok && arm.Audience != "" {
		out.ResourceManagerAudience = arm.Audience
	}
	return out
}

// sameHost compares two URLs ignoring case and a trailing slash.
func sameHost(a, b string) bool {
	return a != "" && strings.EqualFold(strings.TrimRight(a, "/"), strings.TrimRight(b, "/"))
}
