package emulator

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// OversizedBodySize is the size of the body that a Fault with Oversized
// sends: more than the 1 MiB that token clients read.
const OversizedBodySize = 2 << 20

// Fault describes how the Emulator misbehaves for some requests. Set one or
// more of the fields; they combine in this order: Delay, then Hang or Drop,
// then the response (Status, Header and one body: Body, Malformed, Oversized
// or Truncated). A Fault with only Delay set delays the requests and then
// serves them normally.
type Fault struct {
	// Path selects the requests whose URL path ends with it; "" selects all.
	Path string
	// Count is how many requests the fault applies to; zero or less means 1.
	Count int
	// Status is the response status. Default: 200 for the body faults
	// (Malformed, Oversized, Truncated), else the normal response is served.
	Status int
	// Header holds headers added to the response, such as Retry-After.
	Header http.Header
	// Body is the response body, written as given.
	Body []byte
	// Delay holds the request this long (system clock) before answering; the
	// wait ends early when the client gives up or the Emulator closes.
	Delay time.Duration
	// Hang holds the request until the client gives up or the Emulator closes,
	// and answers nothing.
	Hang bool
	// Malformed answers with JSON that does not parse.
	Malformed bool
	// Oversized answers with a valid JSON body of OversizedBodySize bytes.
	Oversized bool
	// Truncated declares a longer Content-Length than it sends, then closes
	// the connection.
	Truncated bool
	// Drop closes the connection without answering.
	Drop bool
}

type pendingFault struct {
	f    Fault
	left int
}

// InjectFault queues f. It applies to the next f.Count requests whose path
// ends with f.Path; queued faults are matched oldest first, one per request.
func (e *Emulator) InjectFault(f Fault) {
	n := f.Count
	if n <= 0 {
		n = 1
	}
	f.Header = f.Header.Clone()
	f.Body = append([]byte(nil), f.Body...)
	e.mu.Lock()
	e.faults = append(e.faults, &pendingFault{f: f, left: n})
	e.mu.Unlock()
}

// ClearFaults removes the queued faults.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	e.faults = nil
	e.mu.Unlock()
}

func (e *Emulator) takeFault(path string) (Fault, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, p := range e.faults {
		if !strings.HasSuffix(path, p.f.Path) {
			continue
		}
		p.left--
		if p.left == 0 {
			e.faults = append(e.faults[:i:i], e.faults[i+1:]...)
		}
		return p.f, true
	}
	return e.takeRandomFault(path)
}

// applyFault serves r according to f; next serves it normally.
func (e *Emulator) applyFault(w http.ResponseWriter, r *http.Request, f Fault, next http.Handler) {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-e.done:
			t.Stop()
			dropConnection(w)
			return
		}
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-e.done:
			dropConnection(w)
		}
		return
	}
	if f.Drop {
		dropConnection(w)
		return
	}
	bodyFault := f.Malformed || f.Oversized || f.Truncated
	if f.Status == 0 && !bodyFault && f.Body == nil && len(f.Header) == 0 {
		next.ServeHTTP(w, r)
		return
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := f.Body
	switch {
	case f.Malformed:
		body = []byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0eXAi`)
	case f.Oversized:
		var b bytes.Buffer
		b.Grow(OversizedBodySize)
		b.WriteString(`{"token_type":"Bearer","expires_in":3599,"padding":"`)
		b.Write(bytes.Repeat([]byte("A"), OversizedBodySize-b.Len()-len(`","access_token":"x"}`)))
		b.WriteString(`","access_token":"x"}`)
		body = b.Bytes()
	case f.Truncated && body == nil:
		body = []byte(`{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"truncated"}`)
	}
	h := w.Header()
	for k, vs := range f.Header {
		h[k] = append([]string(nil), vs...)
	}
	if len(body) > 0 && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	if f.Truncated {
		h.Set("Content-Length", strconv.Itoa(len(body)+64))
		h.Set("Connection", "close")
		w.WriteHeader(status)
		_, _ = w.Write(body[:len(body)/2])
		// Returning with fewer bytes than declared makes the server close the
		// connection, so the client reads an unexpected EOF.
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// dropConnection closes the request's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if conn, _, err := hijack(w); err == nil {
		_ = conn.Close()
	}
}

// RandomFault applies a Fault to a share of requests chosen at random: the
// way to see how a client copes with, say, 429s on one request in ten.
type RandomFault struct {
	// Rate is the share of the selected requests that get the fault, from 0
	// (none) to 1 (every one).
	Rate float64
	// Fault is what a chosen request gets; its Path selects the requests
	// ("" selects all) and its Count is ignored.
	Fault Fault
}

type randomFault struct {
	rate float64
	f    Fault
}

// SetRandomFaults replaces the random faults with rf; none removes them. A
// request that no queued fault (InjectFault) applies to is checked against
// them in order, and gets the first whose dice roll says so.
func (e *Emulator) SetRandomFaults(rf ...RandomFault) error {
	var out []*randomFault
	for i, r := range rf {
		if r.Rate < 0 || r.Rate > 1 || r.Rate != r.Rate {
			return fmt.Errorf("emulator: RandomFault[%d].Rate %v is not between 0 and 1", i, r.Rate)
		}
		f := r.Fault
		f.Header = f.Header.Clone()
		f.Body = append([]byte(nil), f.Body...)
		out = append(out, &randomFault{rate: r.Rate, f: f})
	}
	e.mu.Lock()
	e.faultRate = out
	e.mu.Unlock()
	return nil
}

// takeRandomFault rolls the dice for a request of path; e.mu is held.
func (e *Emulator) takeRandomFault(path string) (Fault, bool) {
	for _, r := range e.faultRate {
		if strings.HasSuffix(path, r.f.Path) && rand.Float64() < r.rate {
			return r.f, true
		}
	}
	return Fault{}, false
}
