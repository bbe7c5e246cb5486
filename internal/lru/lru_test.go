package lru

import (
	"slices"
	"testing"
)

func TestMapDropsLeastRecentlyUsed(t *testing.T) {
	var dropped []int
	m := New[int, string](2, func(k int, _ string) { dropped = append(dropped, k) })
	made := 0
	mk := func(s string) func() string { return func() string { made++; return s } }
	if got := m.GetOrAdd(1, mk("a")); got != "a" {
		t.Fatalf("GetOrAdd(1) = %q", got)
	}
	m.GetOrAdd(2, mk("b"))
	if got := m.GetOrAdd(1, mk("x")); got != "a" || made != 2 {
		t.Fatalf("GetOrAdd(1) again = %q after %d creations; want the stored a", got, made)
	}
	m.GetOrAdd(3, mk("c")) // 2 is now the least recently used
	if !slices.Equal(dropped, []int{2}) || m.Len() != 2 || m.Contains(2) || !m.Contains(1) {
		t.Fatalf("dropped %v, len %d; want [2] dropped and 1, 3 kept", dropped, m.Len())
	}
	if m.RemoveIf(1, func(v string) bool { return v == "other" }) {
		t.Fatal("RemoveIf removed an entry whose value did not match")
	}
	if !m.RemoveIf(1, func(v string) bool { return v == "a" }) || m.Contains(1) {
		t.Fatal("RemoveIf did not remove the matching entry")
	}
	if !slices.Equal(dropped, []int{2, 1}) {
		t.Fatalf("dropped %v; want [2 1]", dropped)
	}
	if _, ok := m.Get(1); ok {
		t.Fatal("Get found a removed entry")
	}
}
