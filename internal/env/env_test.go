package env

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{";;", nil},
		{"a", []string{"a"}},
		{" a ; b;;c ", []string{"a", "b", "c"}},
		{"*", []string{"*"}},
	} {
		assert.Equal(t, tc.want, List(tc.in), "List(%q)", tc.in)
	}
}

func TestBool(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{"1": true, "true": true, "TRUE": true, " True ": true, "": false, "0": false, "yes": false, "false": false} {
		assert.Equal(t, want, Bool(in), "Bool(%q)", in)
	}
}

func TestOrOS(t *testing.T) {
	t.Parallel()
	assert.Equal(t, os.Getenv("PATH"), OrOS(nil)("PATH"))
	assert.Equal(t, "x", OrOS(func(string) string { return "x" })("PATH"))
}
