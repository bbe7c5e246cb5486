//go:build unix

package exec

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An executable that is open for writing cannot be started ("text file
// busy"); the runner tries a few times and then reports it clearly.
func TestRunBusyExecutableIsRetriedThenReported(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tool")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o700)
	require.NoError(t, err)
	_, err = f.WriteString("#!/bin/sh\nexit 0\n")
	require.NoError(t, err)

	_, err = OS{Path: dir}.Run(context.Background(), Command{Name: "tool"})
	var se *StartError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, syscall.ETXTBSY)

	require.NoError(t, f.Close())
	_, err = OS{Path: dir}.Run(context.Background(), Command{Name: "tool"})
	assert.NoError(t, err, "starts once the executable is closed")
}
