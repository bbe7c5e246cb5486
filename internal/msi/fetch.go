package msi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/httpx"
	"github.com/azcred/azcred/internal/redact"
)

// responseView is what classification reads of an answer.
type responseView struct {
	status  int
	header  http.Header
	body    []byte
	excerpt string
}

// view reads an answer; its excerpt is redacted by red.
func view(r *httpx.Response, red *redact.Redactor) *responseView {
	return &responseView{status: r.StatusCode, header: r.Header, body: r.Body, excerpt: red.Body(r.Body, maxExcerpt)}
}

// GetToken gets a token for resource (a scope without "/.default") from the
// endpoint. Errors are *UnavailableError, *ResponseError, or a context's
// error wrapped in a *ResponseError. No error holds a secret the request
// carried (IDENTITY_HEADER, MSI_SECRET, the Arc key) or a token, however
// the endpoint echoed it.
func (c *Client) GetToken(ctx context.Context, resource string) (Token, error) {
	if resource == "" {
		return Token{}, errors.New("the resource is empty")
	}
	req := c.request(resource)
	start := c.clock.Now()
	var (
		resp *httpx.Response
		err  error
	)
	switch {
	case c.source == AzureArc:
		return c.arc(ctx, req, start)
	case c.probing():
		resp, err = c.chainFirst(ctx, req, start)
	default:
		resp, err = c.do(ctx, req, start)
	}
	tok, err := c.finish(resp, err, start, c.redactor)
	return tok, scrub(err, c.redactor)
}

// scrub redacts an error of GetToken: the message and excerpt of a
// *ResponseError or *UnavailableError, and the text of its cause. The
// causes stay reachable for errors.Is (a context's error).
func scrub(err error, red *redact.Redactor) error {
	if u, ok := errorsAs[*UnavailableError](err); ok {
		u.Msg, u.Err = red.String(u.Msg), red.Error(u.Err)
	}
	if r, ok := errorsAs[*ResponseError](err); ok {
		r.Msg, r.Body, r.Err = red.String(r.Msg), red.String(r.Body), red.Error(r.Err)
	}
	return red.Error(err)
}

// request builds the token request of the source.
func (c *Client) request(resource string) *httpx.Request {
	q, h := url.Values{}, http.Header{}
	method := http.MethodGet
	var body []byte
	idParam := func(client, object, res string) {
		switch c.id.Kind {
		case ClientID:
			q.Set(client, c.id.Value)
		case ObjectID:
			q.Set(object, c.id.Value)
		case ResourceID:
			q.Set(res, c.id.Value)
		}
	}
	switch c.source {
	case IMDS, AzureArc:
		api := apiIMDS
		if c.source == AzureArc {
			api = apiArc
		}
		q.Set("api-version", api)
		q.Set("resource", resource)
		idParam("client_id", "object_id", "msi_res_id")
		h.Set("Metadata", "true")
	case AppService:
		q.Set("api-version", apiAppService)
		q.Set("resource", resource)
		idParam("client_id", "object_id", "mi_res_id")
		h.Set("X-IDENTITY-HEADER", c.secret)
	case ServiceFabric:
		q.Set("api-version", apiServiceFabric)
		q.Set("resource", resource)
		h.Set("Secret", c.secret)
		h.Set("Accept", "application/json")
	case AzureML:
		q.Set("api-version", apiAzureML)
		q.Set("resource", resource)
		if c.mlClient != "" {
			q.Set("clientid", c.mlClient)
		}
		h.Set("secret", c.secret)
	case CloudShell:
		method = http.MethodPost
		body = []byte(url.Values{"resource": {resource}}.Encode())
		h.Set("Metadata", "true")
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	u := *c.endpoint
	u.RawQuery = q.Encode()
	return &httpx.Request{Method: method, URL: u.String(), Header: h, Body: body}
}

// do sends req under the full retry policy. IMDS's 410 is retried until at
// least 70 s have passed since start, whatever MaxRetries says (unless the
// caller turned retries off).
func (c *Client) do(ctx context.Context, req *httpx.Request, start time.Time) (*httpx.Response, error) {
	for {
		resp, err := c.http.Do(ctx, req)
		if err != nil || c.source != IMDS || resp.StatusCode != http.StatusGone || c.retryOff {
			return resp, err
		}
		left := imdsGoneWindow - c.clock.Now().Sub(start)
		if left <= 0 {
			return resp, nil
		}
		wait := min(max(c.http.Policy().RetryDelay, time.Second), left)
		c.logger.LogAttrs(ctx, slog.LevelInfo, "azcred IMDS is updating (410); retrying", slog.Duration("delay", wait))
		if err := clock.Sleep(ctx, c.clock, wait); err != nil {
			return nil, &httpx.RequestError{Method: req.Method, URL: httpx.SafeURL(c.endpoint), Tries: resp.Tries, Err: err}
		}
	}
}

// finish turns the final answer into a token or a classified error.
func (c *Client) finish(resp *httpx.Response, err error, received time.Time, red *redact.Redactor) (Token, error) {
	if err != nil {
		return Token{}, c.transportError(err, red)
	}
	v := view(resp, red)
	if v.status >= 200 && v.status < 300 {
		tok, perr := ParseToken(v.body, received)
		switch {
		case errors.Is(perr, ErrNotJSON) && c.chain:
			return Token{}, &UnavailableError{Msg: fmt.Sprintf("the %s endpoint answered with something that is not JSON, so it is not a managed-identity endpoint", c.source)}
		case perr != nil:
			return Token{}, &ResponseError{Msg: fmt.Sprintf("the %s endpoint's token response is not usable; check that %s is a managed-identity endpoint", c.source, httpx.SafeURL(c.endpoint)), StatusCode: v.status, Body: v.excerpt, Err: perr}
		}
		return tok, nil
	}
	return Token{}, c.classify(v)
}

// classify turns a final non-2xx answer into an error.
func (c *Client) classify(v *responseView) error {
	switch {
	case v.status == http.StatusBadRequest && c.id.Kind == None:
		return &UnavailableError{Msg: fmt.Sprintf("the %s endpoint has no system-assigned identity for this resource (400: %s); assign one, or give the ID of a user-assigned identity", c.source, v.excerpt)}
	case v.status == http.StatusBadRequest:
		return &ResponseError{Msg: fmt.Sprintf("the %s endpoint refused the %s: it is probably not assigned to this resource; check the ID and the resource's identities", c.source, c.id), StatusCode: v.status, Body: v.excerpt}
	case v.status == http.StatusForbidden && bytes.Contains(v.body, []byte("unreachable")):
		return &UnavailableError{Msg: "the IMDS address answered that the network is unreachable (as Docker Desktop does): there is no managed identity here"}
	case c.chain && len(bytes.TrimSpace(v.body)) > 0 && !json.Valid(v.body):
		return &UnavailableError{Msg: fmt.Sprintf("the %s endpoint answered %d with something that is not JSON, so it is not a managed-identity endpoint", c.source, v.status)}
	}
	return &ResponseError{Msg: fmt.Sprintf("the %s endpoint answered %d %s; see the response for the reason", c.source, v.status, http.StatusText(v.status)), StatusCode: v.status, Body: v.excerpt}
}

// transportError explains a request that got no usable answer.
func (c *Client) transportError(err error, red *redact.Redactor) error {
	if _, ok := errorsAs[*UnavailableError](err); ok {
		return err
	}
	if _, ok := errorsAs[*ResponseError](err); ok {
		return err
	}
	if tl, ok := errorsAs[*httpx.RetryAfterTooLongError](err); ok {
		return &ResponseError{Msg: fmt.Sprintf("the %s endpoint is throttling requests", c.source), StatusCode: tl.Response.StatusCode, Body: red.Body(tl.Response.Body, maxExcerpt), Err: err}
	}
	if errors.Is(err, errThumbprint) {
		return &ResponseError{Msg: "the Service Fabric endpoint's TLS certificate does not have the thumbprint in IDENTITY_SERVER_THUMBPRINT; check the variable, or the endpoint is not Service Fabric's", Err: err}
	}
	return &ResponseError{Msg: fmt.Sprintf("no answer from the %s endpoint %s", c.source, httpx.SafeURL(c.endpoint)), Err: err}
}

// arc runs Azure Arc's challenge: the first request must be answered 401
// with the path of a key file, whose content authenticates the second.
// Every error it returns is scrubbed, of the key too once it is read.
func (c *Client) arc(ctx context.Context, req *httpx.Request, start time.Time) (Token, error) {
	red := c.redactor
	resp, err := c.do(ctx, req, start)
	if err != nil {
		return Token{}, scrub(c.transportError(err, red), red)
	}
	v := view(resp, red)
	if v.status != http.StatusUnauthorized && v.status >= 400 {
		return Token{}, scrub(c.classify(v), red)
	}
	key, err := c.arcKeyFromChallenge(v)
	if err != nil {
		return Token{}, scrub(err, red)
	}
	red = red.With(key, strings.TrimSpace(key))
	second := *req
	second.Header = req.Header.Clone()
	second.Header.Set("Authorization", "Basic "+key)
	resp, err = c.do(ctx, &second, start)
	tok, err := c.finish(resp, err, start, red)
	if err != nil {
		return Token{}, scrub(err, red)
	}
	if !arcEchoes(c.id, tok.Fields) {
		return Token{}, &ResponseError{Msg: fmt.Sprintf("Azure Arc did not confirm the requested %s: its answer names another identity, so the token may be the machine's own; check that the identity is assigned to this machine", c.id), StatusCode: resp.StatusCode}
	}
	return tok, nil
}

// maxExcerpt bounds the excerpt of a body that errors and logs carry.
const maxExcerpt = 512

// retryableStatus reports whether a chain's first answer continues under
// the full policy: IMDS's own retry statuses and 5xx.
func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500 || slices.Contains(imdsRetryStatuses, status)
}
