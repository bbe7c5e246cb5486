package azidentity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"

	"github.com/azcred/azcred"
)

// troubleshooting maps a credential to its section of the Azure SDK's
// identity troubleshooting guide.
var troubleshooting = map[string]string{
	credNameAzureCLI:          "azure-cli",
	credNameAzureDeveloperCLI: "azd",
	credNameAzurePipelines:    "apc",
	credNameAzurePowerShell:   "azure-pwsh",
	credNameCert:              "client-cert",
	credNameManagedIdentity:   "managed-id",
	credNameSecret:            "client-secret",
	credNameWorkloadIdentity:  "workload",
}

// AuthenticationFailedError is the error of a credential that is set up but
// could not get a token: the authority (or the tool, or the managed-identity
// endpoint) refused or failed. A chain stops at it.
//
// errors.As also finds the [*azcred.AuthenticationFailedError] the azcred
// core returned, which carries the status, the Entra ID error code and the
// correlation ID as fields.
type AuthenticationFailedError struct {
	// RawResponse is the authority's error response when there was one, else
	// nil. Its body is the response body with every secret and token
	// removed; it can be read again through azcore's runtime.Payload (and
	// Error reads it that way, so it stays readable). Its Request carries
	// the method and the URL without query.
	RawResponse *http.Response

	credType, message string
	omitResponse      bool
	err               error
}

// Error describes the failure: the credential, what went wrong, and, with a
// response, the request line, the status and the redacted body, then a link
// to the troubleshooting guide.
func (e *AuthenticationFailedError) Error() string {
	link := ""
	if anchor, ok := troubleshooting[e.credType]; ok {
		link = "troubleshooting: https://aka.ms/azsdk/go/identity/troubleshoot#" + anchor
	}
	if e.RawResponse == nil || e.omitResponse {
		msg := e.credType + ": " + e.message
		if link != "" {
			msg += "\n" + link
		}
		return msg
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s authentication failed: %s\n", e.credType, e.message)
	if r := e.RawResponse.Request; r != nil && r.URL != nil {
		fmt.Fprintf(&b, "request: %s %s://%s%s\n", r.Method, r.URL.Scheme, r.URL.Host, r.URL.Path)
	}
	fmt.Fprintf(&b, "response: %s\n", e.RawResponse.Status)
	body, err := runtime.Payload(e.RawResponse)
	switch {
	case err != nil:
		fmt.Fprintf(&b, "(the response body could not be read: %s)\n", err.Error())
	case len(body) == 0:
		b.WriteString("(the response had no body)\n")
	default:
		var indented bytes.Buffer
		if json.Indent(&indented, body, "", "  ") == nil {
			body = indented.Bytes()
		}
		b.Write(body)
		b.WriteByte('\n')
	}
	b.WriteString(link)
	return strings.TrimRight(b.String(), "\n")
}

// NonRetriable tells azcore's retry policy not to retry the request whose
// credential failed.
func (*AuthenticationFailedError) NonRetriable() {}

// Unwrap returns the azcred error underneath, when there is one.
func (e *AuthenticationFailedError) Unwrap() error { return e.err }

// AuthenticationRequiredError is returned by an interactive credential
// whose automatic sign-in is disabled (DisableAutomaticAuthentication) when
// a token needs a person to sign in: call the credential's Authenticate
// method, then GetToken again. It counts as "unavailable" in a chain.
type AuthenticationRequiredError struct {
	credentialUnavailableError

	// TokenRequestOptions is the request that needs a sign-in; pass it to
	// Authenticate so that the sign-in covers it.
	TokenRequestOptions policy.TokenRequestOptions
}

// credentialUnavailableError is the error of a source that is not set up
// here. Chains in this package, and the azcred core's, try their next
// source when they see it.
type credentialUnavailableError struct {
	message string
	err     error
}

// NewCredentialUnavailableError returns an error that tells the chains of
// this package (ChainedTokenCredential, DefaultAzureCredential) to try their
// next source; a credential of one's own returns it when its source is not
// set up here. message is the whole text of the error.
//
// The chains of the azcred core recognise it too. The real azidentity's
// ChainedTokenCredential does not: it recognises only its own unexported
// type, so inside it this error (and every error of this package) stops the
// chain as a failure. Build chains of this package's credentials with this
// package's NewChainedTokenCredential.
func NewCredentialUnavailableError(message string) error {
	return &credentialUnavailableError{message: message}
}

// Error returns the message.
func (e *credentialUnavailableError) Error() string { return e.message }

// NonRetriable tells azcore's retry policy not to retry.
func (*credentialUnavailableError) NonRetriable() {}

// Unwrap returns the azcred error underneath, when there is one.
func (e *credentialUnavailableError) Unwrap() error { return e.err }

// classOf reports the class of err: the outermost error in its chain that
// belongs to one of the classes, of this package or of the azcred core.
// The outermost decides, because an unavailable error may carry a failure
// as its cause (a developer tool's failure inside DefaultAzureCredential).
func classOf(err error) (unavailable, required, failed error) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch e.(type) {
		case *AuthenticationRequiredError, *azcred.AuthenticationRequiredError:
			return nil, e, nil
		case *credentialUnavailableError, *azcred.CredentialUnavailableError:
			return e, nil, nil
		case *AuthenticationFailedError, *azcred.AuthenticationFailedError:
			return nil, nil, e
		}
	}
	return nil, nil, nil
}

// convertError turns an error of the azcred core into this package's class
// of it, keeping the core's error as the cause. The caller's own context
// error is returned unchanged.
func convertError(ctx context.Context, name string, p *pipeline, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return err
	}
	message := strings.TrimPrefix(err.Error(), name+": ")
	unavailable, required, failed := classOf(err)
	switch {
	case required != nil:
		var tro policy.TokenRequestOptions
		var r *azcred.AuthenticationRequiredError
		if errors.As(required, &r) {
			tro = policy.TokenRequestOptions{Scopes: r.TokenRequestOptions.Scopes, TenantID: r.TokenRequestOptions.TenantID, Claims: r.TokenRequestOptions.Claims, EnableCAE: r.TokenRequestOptions.EnableCAE}
		}
		var own *AuthenticationRequiredError
		if errors.As(required, &own) {
			return own
		}
		return &AuthenticationRequiredError{
			credentialUnavailableError: credentialUnavailableError{message: name + ": " + message, err: err},
			TokenRequestOptions:        tro,
		}
	case unavailable != nil:
		return &credentialUnavailableError{message: name + ": " + message, err: err}
	}
	out := &AuthenticationFailedError{credType: name, message: message, err: err}
	var own *AuthenticationFailedError
	var core *azcred.AuthenticationFailedError
	switch {
	case errors.As(err, &own) && own.RawResponse != nil:
		// A credential of this package failed inside a chain of this
		// package: its response, already redacted, is the chain's.
		out.RawResponse = own.RawResponse
	case failed != nil && errors.As(failed, &core) && core.StatusCode != 0:
		out.RawResponse = rawResponse(core, p)
	}
	return out
}

// sourceError converts the error of one credential's GetToken or
// Authenticate. An error of no class is a request the core refused before
// sending anything (no scope, several scopes for a developer tool or
// managed identity, a malformed tenant ID or one the credential may not
// use): as with azidentity, the caller gets it as a plain error, not an
// AuthenticationFailedError, since nothing failed to authenticate.
func sourceError(ctx context.Context, name string, p *pipeline, err error) error {
	if unavailable, required, failed := classOf(err); unavailable == nil && required == nil && failed == nil {
		return err
	}
	return convertError(ctx, name, p, err)
}

// claimsRefusal turns the Azure CLI's and Azure PowerShell's refusal of a
// request with Claims (the tool cannot add claims; the message gives the
// sign-in command that can) into a plain error, as azidentity returns it:
// nothing failed to authenticate, the user must sign in again. Inside
// DefaultAzureCredential the refusal is unavailable, as in azidentity.
func claimsRefusal(opts policy.TokenRequestOptions, err error) error {
	var failed *AuthenticationFailedError
	if opts.Claims == "" || !errors.As(err, &failed) {
		return err
	}
	return errors.New(failed.credType + ": " + failed.message)
}

// chainError converts a chain's error: as convertError, but an
// AuthenticationFailedError does not repeat the failed source's response in
// its message, which already lists every attempt (RawResponse still holds
// it).
func chainError(ctx context.Context, name string, err error) error {
	err = convertError(ctx, name, nil, err)
	var failed *AuthenticationFailedError
	if errors.As(err, &failed) && failed.credType == name {
		failed.omitResponse = true
	}
	return err
}

// rawResponse rebuilds the authority's error response from what the core
// kept of it (status and redacted body) and the request line the pipeline
// saw for that status.
func rawResponse(f *azcred.AuthenticationFailedError, p *pipeline) *http.Response {
	body := []byte(f.Response)
	res := &http.Response{
		StatusCode:    f.StatusCode,
		Status:        strconv.Itoa(f.StatusCode) + " " + http.StatusText(f.StatusCode),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		ContentLength: int64(len(body)),
		Body:          streaming.NopCloser(bytes.NewReader(body)),
	}
	if json.Valid(body) {
		res.Header.Set("Content-Type", "application/json")
	}
	if f.CorrelationID != "" {
		res.Header.Set("x-ms-correlation-id", f.CorrelationID)
	}
	if p != nil {
		if l := p.lastFailure.Load(); l != nil && l.status == f.StatusCode {
			res.Request = &http.Request{Method: l.method, URL: &url.URL{Scheme: l.scheme, Host: l.host, Path: l.path}, Header: http.Header{}}
		}
	}
	return res
}
