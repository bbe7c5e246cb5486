package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/azcred/azcred/internal/httpx"
	"github.com/azcred/azcred/internal/jwtx"
)

// The public-client grants.
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	// GrantDeviceCode is the grant_type of a device code poll (RFC 8628).
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// ReservedScopes are the OpenID Connect scopes the user grants add to every
// request, so that the answer carries an ID token and a refresh token.
var ReservedScopes = []string{"openid", "offline_access", "profile"}

// WithReservedScopes returns scopes followed by the ReservedScopes they do
// not already hold. scopes is not modified.
func WithReservedScopes(scopes []string) []string {
	out := slices.Clip(slices.Clone(scopes))
	for _, r := range ReservedScopes {
		if !slices.Contains(scopes, r) {
			out = append(out, r)
		}
	}
	return out
}

// AuthorizeEndpoint returns the authorization endpoint that sits next to
// tokenEndpoint (".../oauth2/v2.0/authorize").
func AuthorizeEndpoint(tokenEndpoint string) (string, error) {
	return sibling(tokenEndpoint, "authorize")
}

// DeviceCodeEndpoint returns the device authorization endpoint that sits
// next to tokenEndpoint (".../oauth2/v2.0/devicecode").
func DeviceCodeEndpoint(tokenEndpoint string) (string, error) {
	return sibling(tokenEndpoint, "devicecode")
}

func sibling(tokenEndpoint, name string) (string, error) {
	base, ok := strings.CutSuffix(tokenEndpoint, "/token")
	if !ok || IsADFS(tokenEndpoint) {
		return "", fmt.Errorf("%q is not a Microsoft Entra ID v2.0 token endpoint", tokenEndpoint)
	}
	return base + "/" + name, nil
}

// AuthorizeRequest is an authorization code request with PKCE, sent through
// the user's browser.
type AuthorizeRequest struct {
	// Endpoint is the authorization endpoint (see AuthorizeEndpoint).
	Endpoint string
	// ClientID is the public client's application ID.
	ClientID string
	// RedirectURI is where the authority sends the user back.
	RedirectURI string
	// Scopes are requested with the ReservedScopes added.
	Scopes []string
	// State is echoed by the authority; the client checks it.
	State string
	// Challenge is the PKCE S256 challenge.
	Challenge string
	// ResponseMode is "form_post" or "query"; "" sends none (query).
	ResponseMode string
	// LoginHint and DomainHint preselect the account or its domain.
	LoginHint, DomainHint string
	// Prompt is sent when not empty, such as "select_account".
	Prompt string
	// Claims is a JSON claims request, "" for none; EnableCAE adds CP1.
	Claims    string
	EnableCAE bool
}

// URL returns the URL to open in the browser.
func (r AuthorizeRequest) URL() (string, error) {
	if r.Endpoint == "" || r.ClientID == "" || r.RedirectURI == "" || r.State == "" || r.Challenge == "" {
		return "", errors.New("an authorization request needs an endpoint, a client ID, a redirect URI, a state and a PKCE challenge")
	}
	if len(r.Scopes) == 0 {
		return "", errors.New(`at least one scope is required, such as "https://management.azure.com/.default"`)
	}
	claims, err := MergeClaims(r.Claims, r.EnableCAE)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	q.Set("client_id", r.ClientID)
	q.Set("response_type", "code")
	q.Set("redirect_uri", r.RedirectURI)
	q.Set("scope", strings.Join(WithReservedScopes(r.Scopes), " "))
	q.Set("state", r.State)
	q.Set("code_challenge", r.Challenge)
	q.Set("code_challenge_method", ChallengeMethod)
	q.Set("client_info", "1")
	for k, v := range map[string]string{"response_mode": r.ResponseMode, "login_hint": r.LoginHint, "domain_hint": r.DomainHint, "prompt": r.Prompt, "claims": claims} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return r.Endpoint + "?" + q.Encode(), nil
}

// ClientInfo is the decoded "client_info" of a token response: the user's
// object ID and home tenant, which make up the home account ID.
type ClientInfo struct {
	UID  string `json:"uid"`
	UTID string `json:"utid"`
}

// IDClaims are the claims of an ID token that identify the account.
type IDClaims struct {
	Issuer            string `json:"iss"`
	Audience          string `json:"aud"`
	TenantID          string `json:"tid"`
	ObjectID          string `json:"oid"`
	Subject           string `json:"sub"`
	PreferredUsername string `json:"preferred_username"`
	UPN               string `json:"upn"`
}

// ParseIDToken reads the claims of an ID token received over TLS from the
// authority. It does not verify the signature: the token is read to name
// the account, never to authorize anything.
func ParseIDToken(idToken string) (IDClaims, error) {
	var c IDClaims
	if err := jwtx.DecodeClaims(idToken, &c); err != nil {
		return IDClaims{}, errors.New("the ID token in the token response is not a readable JWT")
	}
	return c, nil
}

// UserToken is a token response of a user grant: the Token and what it says
// about the account.
type UserToken struct {
	*Token
	// ClientInfo is the decoded client_info; zero when none was sent.
	ClientInfo ClientInfo
}

// AuthCodeParams are the parameters of the authorization code grant.
type AuthCodeParams struct {
	Params
	// Code is the authorization code the redirect delivered.
	Code string
	// Verifier is the PKCE verifier whose challenge went in the request.
	Verifier string
	// RedirectURI is the redirect URI of the authorization request.
	RedirectURI string
}

// AuthorizationCode redeems an authorization code
// (grant_type=authorization_code) with its PKCE verifier.
func (c *Client) AuthorizationCode(ctx context.Context, p AuthCodeParams) (*UserToken, error) {
	if p.Code == "" || p.Verifier == "" || p.RedirectURI == "" {
		return nil, errors.New("the authorization code grant needs the code, the PKCE verifier and the redirect URI")
	}
	form, secrets, err := c.userBase(ctx, p.Params, grantAuthorizationCode)
	if err != nil {
		return nil, err
	}
	form.Set("code", p.Code)
	form.Set("code_verifier", p.Verifier)
	form.Set("redirect_uri", p.RedirectURI)
	return c.sendUser(ctx, p.Endpoint, form, append(secrets, p.Code, p.Verifier))
}

// RefreshParams are the parameters of the refresh token grant.
type RefreshParams struct {
	Params
	// RefreshToken is the refresh token to redeem.
	RefreshToken string
}

// Refresh redeems a refresh token (grant_type=refresh_token) for a token to
// p.Scopes. The answer usually carries a new refresh token, which replaces
// the old one.
func (c *Client) Refresh(ctx context.Context, p RefreshParams) (*UserToken, error) {
	if p.RefreshToken == "" {
		return nil, errors.New("the refresh token grant needs a refresh token")
	}
	form, secrets, err := c.userBase(ctx, p.Params, grantRefreshToken)
	if err != nil {
		return nil, err
	}
	form.Set("refresh_token", p.RefreshToken)
	return c.sendUser(ctx, p.Endpoint, form, append(secrets, p.RefreshToken))
}

// DeviceCode is a device authorization response: what the user is told and
// what the client polls with.
type DeviceCode struct {
	// DeviceCode is the secret the client polls with.
	DeviceCode string
	// UserCode is what the user types at VerificationURL.
	UserCode string
	// VerificationURL is the page where the user enters UserCode.
	VerificationURL string
	// Message is the authority's instruction for the user.
	Message string
	// ExpiresOn is when the codes expire.
	ExpiresOn time.Time
	// Interval is the least time between polls; 5 s when the server sent
	// none.
	Interval time.Duration
}

// String describes d without the device code.
func (d DeviceCode) String() string {
	return fmt.Sprintf("oauth.DeviceCode{UserCode: %q, VerificationURL: %q, ExpiresOn: %s, DeviceCode: [REDACTED]}", d.UserCode, d.VerificationURL, d.ExpiresOn.Format(time.RFC3339))
}

// defaultPollInterval is RFC 8628's default.
const defaultPollInterval = 5 * time.Second

// StartDeviceCode asks the device authorization endpoint (p.Endpoint, see
// DeviceCodeEndpoint) for a device code for p.Scopes.
func (c *Client) StartDeviceCode(ctx context.Context, p Params) (*DeviceCode, error) {
	form, secrets, err := c.userBase(ctx, p, "")
	if err != nil {
		return nil, err
	}
	form.Del("grant_type")
	sent := c.clock.Now()
	resp, err := c.post(ctx, p.Endpoint, form)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, ParseError(resp.StatusCode, resp.Body, secrets...)
	}
	var raw struct {
		DeviceCode      string          `json:"device_code"`
		UserCode        string          `json:"user_code"`
		VerificationURI string          `json:"verification_uri"`
		VerificationURL string          `json:"verification_url"`
		Message         string          `json:"message"`
		ExpiresIn       json.RawMessage `json:"expires_in"`
		Interval        json.RawMessage `json:"interval"`
	}
	if json.Unmarshal(resp.Body, &raw) != nil {
		return nil, errors.New("the device code response is not the expected JSON object")
	}
	if raw.VerificationURI == "" {
		raw.VerificationURI = raw.VerificationURL
	}
	if raw.DeviceCode == "" || raw.UserCode == "" || raw.VerificationURI == "" {
		return nil, errors.New("the device code response lacks device_code, user_code or verification_uri")
	}
	expiresIn, ok := seconds(raw.ExpiresIn)
	if !ok || expiresIn <= 0 {
		return nil, errors.New("the device code response has no valid expires_in")
	}
	interval, ok := seconds(raw.Interval)
	if !ok || interval <= 0 {
		// Zero would poll back to back for the code's whole life.
		interval = defaultPollInterval
	}
	return &DeviceCode{
		DeviceCode:      raw.DeviceCode,
		UserCode:        raw.UserCode,
		VerificationURL: raw.VerificationURI,
		Message:         raw.Message,
		ExpiresOn:       sent.Add(expiresIn),
		Interval:        interval,
	}, nil
}

// DevicePollParams are the parameters of one device code poll.
type DevicePollParams struct {
	Params
	// DeviceCode is DeviceCode.DeviceCode.
	DeviceCode string
}

// PollDeviceCode asks the token endpoint once whether the user has finished
// (grant_type=urn:ietf:params:oauth:grant-type:device_code). While the user
// has not, the answer is an *Error whose Code is "authorization_pending" or
// "slow_down" (see ErrorCode).
func (c *Client) PollDeviceCode(ctx context.Context, p DevicePollParams) (*UserToken, error) {
	if p.DeviceCode == "" {
		return nil, errors.New("a device code poll needs the device code")
	}
	form, secrets, err := c.userBase(ctx, p.Params, GrantDeviceCode)
	if err != nil {
		return nil, err
	}
	form.Set("device_code", p.DeviceCode)
	return c.sendUser(ctx, p.Endpoint, form, append(secrets, p.DeviceCode))
}

// Device code poll outcomes (RFC 8628 section 3.5).
const (
	CodeAuthorizationPending  = "authorization_pending"
	CodeSlowDown              = "slow_down"
	CodeExpiredToken          = "expired_token"
	CodeAuthorizationDeclined = "authorization_declined"
	CodeAccessDenied          = "access_denied"
	CodeInvalidGrant          = "invalid_grant"
	CodeInteractionRequired   = "interaction_required"
)

// ErrorCode returns the OAuth error code of err when it is (or wraps) an
// *Error, else "".
func ErrorCode(err error) string {
	var oe *Error
	if errors.As(err, &oe) {
		return oe.Code
	}
	return ""
}

// userBase builds the form of a public-client user grant: the shared fields
// with the reserved scopes added and client_info=1.
func (c *Client) userBase(ctx context.Context, p Params, grant string) (url.Values, []string, error) {
	p.Scopes = WithReservedScopes(p.Scopes)
	form, secrets, err := c.base(ctx, p, grant, false)
	if err != nil {
		return nil, nil, err
	}
	form.Set("client_info", "1")
	return form, secrets, nil
}

func (c *Client) post(ctx context.Context, endpoint string, form url.Values) (*httpx.Response, error) {
	if endpoint == "" {
		return nil, errors.New("no endpoint")
	}
	return c.http.Do(ctx, &httpx.Request{
		Method: http.MethodPost,
		URL:    endpoint,
		Header: http.Header{"Content-Type": {formContentType}, "Accept": {"application/json"}},
		Body:   []byte(form.Encode()),
	})
}

// sendUser posts a user grant and reads the token, its ID token's presence
// and its client_info.
func (c *Client) sendUser(ctx context.Context, endpoint string, form url.Values, secrets []string) (*UserToken, error) {
	sent := c.clock.Now()
	resp, err := c.post(ctx, endpoint, form)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, ParseError(resp.StatusCode, resp.Body, secrets...)
	}
	tok, err := ParseTokenResponse(resp.Body, sent)
	if err != nil {
		return nil, err
	}
	ut := &UserToken{Token: tok}
	var raw struct {
		ClientInfo string `json:"client_info"`
	}
	if json.Unmarshal(resp.Body, &raw) == nil && raw.ClientInfo != "" {
		if b, err := jwtx.Decode(raw.ClientInfo); err == nil {
			_ = json.Unmarshal(b, &ut.ClientInfo)
		}
	}
	return ut, nil
}
