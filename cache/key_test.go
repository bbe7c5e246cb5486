package cache

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestKeyOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b Request
		same bool
	}{
		{"order does not matter", Request{Scopes: []string{"a", "b"}}, Request{Scopes: []string{"b", "a"}}, true},
		{"repetitions do not matter", Request{Scopes: []string{"a", "b", "a"}}, Request{Scopes: []string{"b", "a"}}, true},
		{"one scope repeated is one scope", Request{Scopes: []string{"a", "a", "a"}}, Request{Scopes: []string{"a"}}, true},
		{"different scope", Request{Scopes: []string{"a"}}, Request{Scopes: []string{"b"}}, false},
		{"subset", Request{Scopes: []string{"a", "b"}}, Request{Scopes: []string{"a"}}, false},
		{"no scopes vs one empty scope", Request{}, Request{Scopes: []string{""}}, false},
		{"empty scope counts", Request{Scopes: []string{"a", ""}}, Request{Scopes: []string{"a"}}, false},
		{"single scope imitating the encoding", Request{Scopes: []string{"1:a1:b"}}, Request{Scopes: []string{"a", "b"}}, false},
		{"colons inside scopes", Request{Scopes: []string{"a:1", "b"}}, Request{Scopes: []string{"a", "1:b"}}, false},
		{"digits inside scopes", Request{Scopes: []string{"1:a", "2:bc"}}, Request{Scopes: []string{"1:a2:", "bc"}}, false},
		{"tenant separates", Request{Scopes: []string{"a"}, TenantID: "t1"}, Request{Scopes: []string{"a"}, TenantID: "t2"}, false},
		{"CAE separates", Request{Scopes: []string{"a"}, EnableCAE: true}, Request{Scopes: []string{"a"}}, false},
		{"claims do not change the key", Request{Scopes: []string{"a"}, Claims: "c"}, Request{Scopes: []string{"a"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.same, keyOf(tt.a) == keyOf(tt.b))
		})
	}
}

func TestKeyOfLeavesScopesAlone(t *testing.T) {
	t.Parallel()
	scopes := []string{"c", "a", "b", "a"}
	keyOf(Request{Scopes: scopes})
	assert.Equal(t, []string{"c", "a", "b", "a"}, scopes)
	many := []string{"j", "i", "h", "g", "f", "e", "d", "c", "b", "a"}
	keyOf(Request{Scopes: many})
	assert.Equal(t, []string{"j", "i", "h", "g", "f", "e", "d", "c", "b", "a"}, many)
}

// pick builds a list of up to 7 scopes from pool, chosen by the bits of sel.
func pick(pool []string, sel uint32) []string {
	n := int(sel & 7)
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, pool[int(sel>>(3+3*i)&7)%len(pool)])
	}
	return out
}

func setOf(scopes []string) map[string]bool {
	m := make(map[string]bool, len(scopes))
	for _, s := range scopes {
		m[s] = true
	}
	return m
}

// FuzzKey checks that two scope lists get the same key exactly when they
// hold the same set of scopes, whatever the order, repetitions, empty
// strings or separator-like contents, and that nothing panics.
func FuzzKey(f *testing.F) {
	f.Add("a", "b", "c", "d", uint32(0x1d3), uint32(0x2a), "t", false)
	f.Add("1:a", "a", "1:", "", uint32(0xfff7), uint32(0x5), "", true)
	f.Add("2:ab", "ab", "2:", ":", uint32(0x4b2), uint32(0x24a2), "x", false)
	f.Add("", "", "0:", "00:", uint32(0x12), uint32(0x21), "", false)
	f.Add("https://management.azure.com/.default", "openid", "x:y", "1:a1:b", uint32(0x7ff), uint32(0x3), "tenant", true)
	f.Fuzz(func(t *testing.T, a, b, c, d string, sel1, sel2 uint32, tenant string, cae bool) {
		pool := []string{a, b, c, d}
		l1, l2 := pick(pool, sel1), pick(pool, sel2)
		k1 := keyOf(Request{Scopes: l1, TenantID: tenant, EnableCAE: cae})
		k2 := keyOf(Request{Scopes: l2, TenantID: tenant, EnableCAE: cae})
		want := maps.Equal(setOf(l1), setOf(l2))
		if (k1 == k2) != want {
			t.Fatalf("scopes %q and %q: same key %v, same set %v", l1, l2, k1 == k2, want)
		}

		// The same set in another order, with repetitions, gives the same key.
		shuffled := slices.Clone(l1)
		slices.Reverse(shuffled)
		shuffled = append(shuffled, l1...)
		if k := keyOf(Request{Scopes: shuffled, TenantID: tenant, EnableCAE: cae}); k != k1 {
			t.Fatalf("scopes %q and %q: same set, different keys", l1, shuffled)
		}
		// Tenant and CAE always separate keys.
		if keyOf(Request{Scopes: l1, TenantID: tenant + "x", EnableCAE: cae}) == k1 {
			t.Fatalf("scopes %q: tenant %q and %q share a key", l1, tenant, tenant+"x")
		}
		if keyOf(Request{Scopes: l1, TenantID: tenant, EnableCAE: !cae}) == k1 {
			t.Fatalf("scopes %q: CAE on and off share a key", l1)
		}
	})
}
