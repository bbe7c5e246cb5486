package azidentity_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// importRewrites are the only changes made to azidentity's example files.
var importRewrites = map[string]string{
	realPath:            facadePath,
	realPath + "/cache": facadePath + "/cache",
}

// TestAzidentityExamplesCompile copies azidentity v1.15.0's own
// example_test.go and example_*_test.go files from the module cache, rewrites their imports of
// azidentity and azidentity/cache to this package and its cache package,
// and type-checks and vets them as test files of this package (through a
// go build overlay, so nothing is written into the source tree). It fails
// on any compile error: a missing identifier, a changed signature, a field
// of a different type.
func TestAzidentityExamplesCompile(t *testing.T) {
	t.Parallel()
	goTool := filepath.Join(runtimeGOROOT(t), "bin", "go")
	out, err := exec.Command(goTool, "list", "-m", "-f", "{{.Dir}}", realPath).Output()
	require.NoError(t, err, "go list -m %s (run go mod download in azsdk/)", realPath)
	src := strings.TrimSpace(string(out))
	files, err := filepath.Glob(filepath.Join(src, "example_*_test.go"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(src, "example_test.go")); err == nil {
		files = append(files, filepath.Join(src, "example_test.go"))
	}
	require.NotEmpty(t, files, "no example files in %s", src)

	here, err := os.Getwd()
	require.NoError(t, err)
	tmp := t.TempDir()
	overlay := map[string]string{}
	rewritten := 0
	for _, f := range files {
		data, n := rewriteImports(t, f)
		rewritten += n
		copyPath := filepath.Join(tmp, filepath.Base(f))
		require.NoError(t, os.WriteFile(copyPath, data, 0o600))
		overlay[filepath.Join(here, "zz_azidentity_"+filepath.Base(f))] = copyPath
	}
	assert.Positive(t, rewritten, "no import was rewritten")
	js, err := json.Marshal(map[string]any{"Replace": overlay})
	require.NoError(t, err)
	overlayFile := filepath.Join(tmp, "overlay.json")
	require.NoError(t, os.WriteFile(overlayFile, js, 0o600))

	cmd := exec.Command(goTool, "vet", "-overlay="+overlayFile, ".")
	cmd.Dir = here
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "azidentity's examples do not compile against the drop-in:\n%s", msg)
	t.Logf("%d example files of azidentity compiled and vetted against %s (%d imports rewritten)", len(files), facadePath, rewritten)
}

// rewriteImports returns the file with its azidentity imports pointed at
// this package, and how many it changed.
func rewriteImports(t *testing.T, path string) ([]byte, int) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	require.NoError(t, err)
	n := 0
	for _, spec := range f.Imports {
		p, err := strconv.Unquote(spec.Path.Value)
		require.NoError(t, err)
		if to, ok := importRewrites[p]; ok {
			spec.Path = &ast.BasicLit{Kind: token.STRING, Value: strconv.Quote(to), ValuePos: spec.Path.Pos()}
			n++
		}
	}
	var buf bytes.Buffer
	require.NoError(t, printer.Fprint(&buf, fset, f))
	return buf.Bytes(), n
}

// runtimeGOROOT finds the go command of the toolchain running the test.
func runtimeGOROOT(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	require.NoError(t, err, "the go command must be on PATH to compile the examples")
	return strings.TrimSpace(string(out))
}
