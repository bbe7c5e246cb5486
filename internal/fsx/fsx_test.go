package fsx

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "a.key")
	if err := os.WriteFile(regular, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := ReadRegular(regular, 16)
	if err != nil || string(b) != "secret" {
		t.Fatalf("ReadRegular(regular) = %q, %v", b, err)
	}
	if _, err := ReadRegular(regular, 5); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the bound: %v, want ErrTooLarge", err)
	}
	if _, err := ReadRegular(filepath.Join(dir, "missing"), 16); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v, want ErrNotExist", err)
	}
	if _, err := ReadRegular(dir, 16); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("directory: %v, want ErrNotRegular", err)
	}
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRegular(link, 16); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("symlink: %v, want ErrNotRegular", err)
	}
}
