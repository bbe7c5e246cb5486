package cache

import (
	"slices"
	"strconv"
	"strings"
)

// Request describes the token a caller wants. The root package converts its
// TokenRequestOptions into a Request; the engine hands it to the [FetchFunc]
// with the same values (its Scopes slice is a copy, so the caller may reuse
// its own slice as soon as [Engine.Get] returns).
type Request struct {
	// Scopes are the scopes the token is for. Their order and repetitions do
	// not matter to the cache: ["a", "b"], ["b", "a"] and ["a", "b", "a"]
	// share one cached token.
	Scopes []string
	// TenantID is the tenant the token is for; empty means the source's own.
	TenantID string
	// Claims is a claims challenge from a resource. A request with Claims
	// always fetches; a successful result replaces the cached token.
	Claims string
	// EnableCAE asks for a token that supports continuous access evaluation.
	// CAE and non-CAE tokens are cached apart.
	EnableCAE bool
}

// key identifies a cached token: the set of scopes, the tenant and the CAE
// flag. It is comparable and used as a map key.
//
// The encoding is unambiguous. n is the number of distinct scopes. When n is
// 1, scopes is that scope itself, so the common request builds its key
// without allocating. When n > 1, scopes is the sorted, de-duplicated scopes,
// each written as its length in decimal, a colon and the scope, so no scope
// content (colons and digits included) can imitate a boundary; n tells the
// two shapes apart.
type key struct {
	scopes string
	n      int
	tenant string
	cae    bool
}

// keyOf builds the key of r. It does not allocate when r names one distinct
// scope (however often repeated).
func keyOf(r Request) key {
	k := key{tenant: r.TenantID, cae: r.EnableCAE}
	switch len(r.Scopes) {
	case 0:
		return k
	case 1:
		k.scopes, k.n = r.Scopes[0], 1
		return k
	}
	first := r.Scopes[0]
	same := true
	for _, s := range r.Scopes[1:] {
		if s != first {
			same = false
			break
		}
	}
	if same {
		k.scopes, k.n = first, 1
		return k
	}
	var buf [8]string
	sorted := append(buf[:0], r.Scopes...)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	size := 0
	for _, s := range sorted {
		size += len(s) + 4
	}
	var b strings.Builder
	b.Grow(size)
	var num [20]byte
	for _, s := range sorted {
		b.Write(strconv.AppendInt(num[:0], int64(len(s)), 10))
		b.WriteByte(':')
		b.WriteString(s)
	}
	k.scopes, k.n = b.String(), len(sorted)
	return k
}

// flightKey identifies one shared fetch: claims-less requests of a key share
// one, and requests carrying the same claims share another, so a claims
// challenge never waits for, or is answered by, a claims-less fetch.
type flightKey struct {
	key    key
	claims string
}
