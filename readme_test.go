package azcred

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's quick start is examples/quickstart, which go vet and the
// build compile: the two must not drift apart.
func TestReadmeQuickStartIsTheCompiledExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	program, err := os.ReadFile("examples/quickstart/main.go")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n## Quick start\n")
	require.True(t, ok, "README.md has a Quick start section")
	_, block, ok := strings.Cut(section, "```go\n")
	require.True(t, ok, "the Quick start has a Go block")
	block, _, ok = strings.Cut(block, "```\n")
	require.True(t, ok, "the Go block ends")
	assert.Equal(t, string(program), block, "README.md's quick start must be examples/quickstart/main.go, verbatim")
}
