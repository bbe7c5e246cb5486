package httpx

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/azcred/azcred/internal/clock"
)

// DefaultMaxBodySize is the default limit on a response body: 1 MiB.
const DefaultMaxBodySize = 1 << 20

// Options contains optional parameters for Client.
type Options struct {
	// Transport sends the tries; it goes through NewDoer, so nil means
	// azcred's own client.
	Transport Doer
	// Retry is the caller's retry policy (the root's RetryOptions). Zero
	// fields take the value of Defaults.
	Retry Policy
	// Defaults is the source's own retry policy; zero fields take the value
	// of EntraDefaults.
	Defaults Policy
	// RetryStatuses are retried in addition to 408, 429 and every 5xx but 501
	// and 505 (managed identity adds 404 and 410, for example).
	RetryStatuses []int
	// Logger receives one record per try (method, URL without query,
	// status, try, duration, client-request-id) and one per retry. nil
	// discards them.
	Logger *slog.Logger
	// Clock times the backoff waits; nil is the system clock.
	Clock clock.Clock
	// MaxBodySize limits response bodies; 0 means DefaultMaxBodySize.
	MaxBodySize int64
}

// Client sends requests through the pipeline. It is safe for concurrent use
// and keeps no state between requests.
type Client struct {
	doer    Doer
	policy  Policy
	extra   []int
	logger  *slog.Logger
	clock   clock.Clock
	maxBody int64
	// jitter returns a backoff factor in [0.8, 1.3); tests replace it.
	jitter func() float64
	// newID returns a client-request-id; tests replace it.
	newID func() string
}

// New returns a Client configured by o.
func New(o Options) *Client {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	maxBody := o.MaxBodySize
	if maxBody <= 0 {
		maxBody = DefaultMaxBodySize
	}
	return &Client{
		doer:    NewDoer(o.Transport),
		policy:  o.Retry.WithDefaults(o.Defaults),
		extra:   slices.Clone(o.RetryStatuses),
		logger:  logger,
		clock:   clock.OrReal(o.Clock),
		maxBody: maxBody,
		jitter:  func() float64 { return 0.8 + rand.Float64()/2 },
		newID:   uuid.NewString,
	}
}

// Policy returns the retry policy in force, defaults filled in.
func (c *Client) Policy() Policy { return c.policy }

// Request is one logical request. Its body is kept as bytes so that every try
// sends it afresh.
type Request struct {
	// Method is the HTTP method; "" means GET.
	Method string
	// URL is the absolute http or https URL.
	URL string
	// Header is sent on every try. The pipeline sets User-Agent (unless
	// given), client-request-id and return-client-request-id.
	Header http.Header
	// Body is sent on every try; nil means none.
	Body []byte
	// MaxBodySize overrides the client's response body limit when > 0.
	MaxBodySize int64
}

// Response is the answer to the last try of a request.
type Response struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Header holds the response headers.
	Header http.Header
	// Body is the whole response body.
	Body []byte
	// Tries is the number of tries made, this one included.
	Tries int
	// ClientRequestID is the client-request-id sent with every try.
	ClientRequestID string
}

// errNotSent marks errors from building a request: retrying cannot help.
var errNotSent = errors.New("request not sent")

// Do sends req, retrying transport failures and retryable statuses as the
// policy allows. It returns the last response, whatever its status, when
// the answer is final or the tries are spent; the caller reads the status.
// Errors are a *RequestError (no usable answer), *RedirectError (3xx),
// *RetryAfterTooLongError or *BodyTooLargeError. The same client-request-id
// (a fresh UUID per call) goes with every try, so the server's logs tie the
// retries of one request together.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("the request URL must be an absolute http or https URL: check the configured endpoint")
	}
	safe := SafeURL(u)
	id := c.newID()
	tries := c.policy.tries()
	for try := 1; ; try++ {
		start := c.clock.Now()
		resp, err := c.once(ctx, method, u, req, id)
		attrs := []slog.Attr{
			slog.String("method", method),
			slog.String("url", safe),
			slog.Int("try", try),
			slog.Duration("duration", c.clock.Now().Sub(start)),
			slog.String("client_request_id", id),
		}
		var delay time.Duration
		if err != nil {
			c.logger.LogAttrs(ctx, slog.LevelDebug, "azcred http try failed", append(attrs, slog.String("error", err.Error()))...)
			var tooLarge *BodyTooLargeError
			if errors.As(err, &tooLarge) {
				tooLarge.Method, tooLarge.URL = method, safe
				return nil, tooLarge
			}
			if ctx.Err() != nil {
				return nil, &RequestError{Method: method, URL: safe, Tries: try, Err: ctx.Err()}
			}
			if try >= tries || !retryableError(err) {
				return nil, &RequestError{Method: method, URL: safe, Tries: try, Err: err}
			}
			delay = c.policy.backoff(try, c.jitter())
		} else {
			c.logger.LogAttrs(ctx, slog.LevelDebug, "azcred http try", append(attrs, slog.Int("status", resp.StatusCode))...)
			resp.Tries, resp.ClientRequestID = try, id
			if resp.StatusCode >= 300 && resp.StatusCode < 400 {
				return nil, &RedirectError{Method: method, URL: safe, StatusCode: resp.StatusCode, LocationHost: locationHost(resp.Header)}
			}
			if try >= tries || !c.retryableStatus(resp.StatusCode) {
				return resp, nil
			}
			if wait, ok := retryAfter(resp.Header, c.clock.Now()); ok {
				if wait > c.policy.maxDelay() {
					return nil, &RetryAfterTooLongError{Method: method, URL: safe, Wait: wait, Limit: c.policy.MaxRetryDelay, Tries: try, Response: resp}
				}
				delay = wait
			} else {
				delay = c.policy.backoff(try, c.jitter())
			}
		}
		c.logger.LogAttrs(ctx, slog.LevelInfo, "azcred http retry", slog.String("method", method), slog.String("url", safe),
			slog.Int("try", try), slog.Duration("delay", delay), slog.String("client_request_id", id))
		if err := clock.Sleep(ctx, c.clock, delay); err != nil {
			return nil, &RequestError{Method: method, URL: safe, Tries: try, Err: err}
		}
	}
}

// once makes one try and reads its whole body through the size limit.
func (c *Client) once(ctx context.Context, method string, u *url.URL, req *Request, id string) (*Response, error) {
	// Each try is bounded even when ctx has a deadline of its own: a shared
	// fetch runs under a generous backstop deadline, and the source's
	// per-try bound is what keeps one hung connection from using it all.
	if c.policy.TryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.policy.TryTimeout)
		defer cancel()
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid method or URL", errNotSent)
	}
	for k, v := range req.Header {
		hr.Header[k] = slices.Clone(v)
	}
	if hr.Header.Get("User-Agent") == "" {
		hr.Header.Set("User-Agent", UserAgent)
	}
	hr.Header.Set("client-request-id", id)
	hr.Header.Set("return-client-request-id", "true")

	resp, err := c.doer.Do(hr)
	if err != nil {
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		return nil, withoutURL(err)
	}
	if resp == nil {
		return nil, errors.New("the transport returned neither a response nor an error")
	}
	defer func() { _ = resp.Body.Close() }()
	limit := c.maxBody
	if req.MaxBodySize > 0 {
		limit = req.MaxBodySize
	}
	if resp.ContentLength > limit {
		return nil, &BodyTooLargeError{StatusCode: resp.StatusCode, Limit: limit}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading the response body: %w", withoutURL(err))
	}
	if int64(len(b)) > limit {
		return nil, &BodyTooLargeError{StatusCode: resp.StatusCode, Limit: limit}
	}
	return &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// retryableStatus reports whether a try that got status is retried: 408,
// 429, every 5xx but 501 (Not Implemented) and 505 (HTTP Version Not
// Supported), and the source's extra statuses.
func (c *Client) retryableStatus(status int) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return true
	case status >= 500 && status < 600 && status != http.StatusNotImplemented && status != http.StatusHTTPVersionNotSupported:
		return true
	}
	return slices.Contains(c.extra, status)
}

// retryableError reports whether a transport failure may go away on retry.
// Certificate failures and requests that could not be built will not.
func retryableError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, errNotSent),
		errors.As(err, &unknownAuthority),
		errors.As(err, &hostname),
		errors.As(err, &invalid),
		errors.As(err, &verification):
		return false
	}
	return true
}

// withoutURL drops the *url.Error layer of Go's client errors: it repeats the
// full URL, query string included, which may carry values that must not
// appear in error text.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// SafeURL renders u as scheme://host/path: no user information, query or
// fragment, so it may appear in logs and errors.
func SafeURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// locationHost returns the host of a Location header, "" when there is none.
func locationHost(h http.Header) string {
	loc := h.Get("Location")
	if loc == "" {
		return ""
	}
	u, err := url.Parse(loc)
	if err != nil {
		return ""
	}
	return u.Host
}

// retryAfter reads the server's requested wait: retry-after-ms, then
// x-ms-retry-after-ms (milliseconds), then Retry-After (seconds or an HTTP
// date). Absent, unparsable and non-positive values report false.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	for _, name := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
				return scale(n, time.Millisecond), true
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n > 0 {
			return scale(n, time.Second), true
		}
		return 0, false
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
	}
	return 0, false
}

// scale returns n×unit, saturating instead of overflowing.
func scale(n int64, unit time.Duration) time.Duration {
	if n > math.MaxInt64/int64(unit) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(n) * unit
}
