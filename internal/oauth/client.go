package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/httpx"
)

// Grant types and form values sent to the token endpoint.
const (
	grantClientCredentials = "client_credentials"
	grantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantPassword          = "password"
	// AssertionType is the client_assertion_type of a JWT client assertion.
	AssertionType   = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	formContentType = "application/x-www-form-urlencoded; charset=utf-8"
)

// Options contains optional parameters for Client.
type Options struct {
	// HTTP sends the requests; nil means httpx.New with default options.
	HTTP *httpx.Client
	// Clock stamps the tokens' times; nil is the system clock.
	Clock clock.Clock
}

// Client sends token requests. It is safe for concurrent use and caches
// nothing: every call is one logical request (retries aside).
type Client struct {
	http  *httpx.Client
	clock clock.Clock
}

// NewClient returns a Client. Pass a zero Options to accept the defaults.
func NewClient(o Options) *Client {
	h := o.HTTP
	if h == nil {
		h = httpx.New(httpx.Options{})
	}
	return &Client{http: h, clock: clock.OrReal(o.Clock)}
}

// ClientAuth is how a confidential client proves itself: exactly one of a
// secret or an assertion source.
type ClientAuth struct {
	// Secret is the client secret's value.
	Secret string
	// Assertion returns a signed JWT (a certificate-signed assertion, or a
	// federated token such as a Kubernetes service-account token). It is
	// called once per request, so rotating sources stay fresh.
	Assertion func(context.Context) (string, error)
}

func (a ClientAuth) set(ctx context.Context, form url.Values, required bool) (secret string, err error) {
	switch {
	case a.Secret != "" && a.Assertion != nil:
		return "", errors.New("give either a client secret or a client assertion, not both")
	case a.Secret != "":
		form.Set("client_secret", a.Secret)
		return a.Secret, nil
	case a.Assertion != nil:
		assertion, err := a.Assertion(ctx)
		if err != nil {
			return "", &AssertionError{Err: err}
		}
		if assertion == "" {
			return "", &AssertionError{}
		}
		form.Set("client_assertion_type", AssertionType)
		form.Set("client_assertion", assertion)
		return assertion, nil
	case required:
		return "", errors.New("a client secret or a client assertion is required")
	}
	return "", nil
}

// AssertionError means the client assertion could not be had, so no request
// was sent: its source failed (Err) or returned an empty assertion (Err nil).
type AssertionError struct {
	Err error
}

func (e *AssertionError) Error() string {
	if e.Err == nil {
		return "the client assertion source returned an empty assertion"
	}
	return "getting the client assertion: " + e.Err.Error()
}

// Unwrap returns the source's error.
func (e *AssertionError) Unwrap() error { return e.Err }

// Params are the fields every grant takes.
type Params struct {
	// Endpoint is the token endpoint (see TokenEndpoint).
	Endpoint string
	// ClientID is the application (client) ID.
	ClientID string
	// Auth authenticates the client; required for the confidential grants,
	// optional for Password.
	Auth ClientAuth
	// Scopes are sent space-separated; at least one is required.
	Scopes []string
	// Claims is a JSON object of claims to request (from a CAE challenge);
	// "" for none.
	Claims string
	// EnableCAE adds the CP1 client capability to the claims.
	EnableCAE bool
}

// OnBehalfOfParams are the parameters of the on-behalf-of grant.
type OnBehalfOfParams struct {
	Params
	// UserAssertion is the access token the caller received, exchanged for
	// a token to a downstream resource.
	UserAssertion string
}

// PasswordParams are the parameters of the resource-owner password grant.
type PasswordParams struct {
	Params
	// Username and Password are the user's.
	Username, Password string
}

// ClientCredentials requests an app token with the client credentials grant
// (grant_type=client_credentials) authenticated by a secret or an assertion.
func (c *Client) ClientCredentials(ctx context.Context, p Params) (*Token, error) {
	form, secrets, err := c.base(ctx, p, grantClientCredentials, true)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, p.Endpoint, form, secrets)
}

// OnBehalfOf exchanges a user's access token for a token to another
// resource (grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer,
// requested_token_use=on_behalf_of).
func (c *Client) OnBehalfOf(ctx context.Context, p OnBehalfOfParams) (*Token, error) {
	if p.UserAssertion == "" {
		return nil, errors.New("the user assertion (the caller's access token) is required")
	}
	form, secrets, err := c.base(ctx, p.Params, grantJWTBearer, true)
	if err != nil {
		return nil, err
	}
	form.Set("assertion", p.UserAssertion)
	form.Set("requested_token_use", "on_behalf_of")
	return c.send(ctx, p.Endpoint, form, append(secrets, p.UserAssertion))
}

// Password requests a user token with the resource-owner password grant
// (grant_type=password). Auth is optional: public clients send none.
func (c *Client) Password(ctx context.Context, p PasswordParams) (*Token, error) {
	if p.Username == "" || p.Password == "" {
		return nil, errors.New("a username and a password are required")
	}
	form, secrets, err := c.base(ctx, p.Params, grantPassword, false)
	if err != nil {
		return nil, err
	}
	form.Set("username", p.Username)
	form.Set("password", p.Password)
	return c.send(ctx, p.Endpoint, form, append(secrets, p.Password))
}

// base checks p and builds the form fields every grant shares.
func (c *Client) base(ctx context.Context, p Params, grant string, authRequired bool) (url.Values, []string, error) {
	if p.Endpoint == "" {
		return nil, nil, errors.New("no token endpoint")
	}
	if p.ClientID == "" {
		return nil, nil, errors.New("a client ID is required")
	}
	if len(p.Scopes) == 0 {
		return nil, nil, errors.New(`at least one scope is required, such as "https://management.azure.com/.default"`)
	}
	for _, s := range p.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return nil, nil, fmt.Errorf("scope %q is not valid: scopes are non-empty and contain no spaces", s)
		}
	}
	claims, err := MergeClaims(p.Claims, p.EnableCAE)
	if err != nil {
		return nil, nil, err
	}
	form := url.Values{}
	form.Set("grant_type", grant)
	form.Set("client_id", p.ClientID)
	form.Set("scope", strings.Join(p.Scopes, " "))
	if claims != "" {
		form.Set("claims", claims)
	}
	secret, err := p.Auth.set(ctx, form, authRequired)
	if err != nil {
		return nil, nil, err
	}
	return form, []string{secret}, nil
}

// send posts form to endpoint and reads the answer.
func (c *Client) send(ctx context.Context, endpoint string, form url.Values, secrets []string) (*Token, error) {
	sent := c.clock.Now()
	resp, err := c.http.Do(ctx, &httpx.Request{
		Method: http.MethodPost,
		URL:    endpoint,
		Header: http.Header{"Content-Type": {formContentType}, "Accept": {"application/json"}},
		Body:   []byte(form.Encode()),
	})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, ParseError(resp.StatusCode, resp.Body, secrets...)
	}
	return ParseTokenResponse(resp.Body, sent)
}
