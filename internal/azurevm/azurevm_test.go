package azurevm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dmiDir writes a fake /sys/class/dmi/id holding the given attributes.
func dmiDir(t *testing.T, attrs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range attrs {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o444))
	}
	return dir
}

func TestReadDMI(t *testing.T) {
	t.Parallel()
	unreadable := t.TempDir()
	// A folder where the file should be cannot be read, even by root.
	require.NoError(t, os.Mkdir(filepath.Join(unreadable, "sys_vendor"), 0o700))
	for _, tc := range []struct {
		name            string
		root            string
		vendor          string
		notAzure, azure bool
		wantErr         bool
	}{
		{name: "Azure VM", root: dmiDir(t, map[string]string{"sys_vendor": "Microsoft Corporation", "chassis_asset_tag": AzureAssetTag}),
			vendor: "Microsoft Corporation", azure: true},
		{name: "Hyper-V on a laptop", root: dmiDir(t, map[string]string{"sys_vendor": "Microsoft Corporation", "chassis_asset_tag": "0000-0000-0000-0000-0000-0000-00"}),
			vendor: "Microsoft Corporation"},
		{name: "physical laptop", root: dmiDir(t, map[string]string{"sys_vendor": "LENOVO", "chassis_asset_tag": "No Asset Information"}),
			vendor: "LENOVO", notAzure: true},
		{name: "other cloud", root: dmiDir(t, map[string]string{"sys_vendor": "Amazon EC2"}), vendor: "Amazon EC2", notAzure: true},
		{name: "no DMI", root: filepath.Join(t.TempDir(), "absent"), wantErr: true},
		{name: "unreadable DMI", root: unreadable, wantErr: true},
		{name: "empty vendor", root: dmiDir(t, map[string]string{"sys_vendor": "  "}), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := ReadDMI(tc.root)
			assert.Equal(t, tc.vendor, f.Vendor)
			assert.Equal(t, tc.notAzure, f.NotAzureVM(), "NotAzureVM")
			assert.Equal(t, tc.azure, f.AzureVM(), "AzureVM")
			assert.Equal(t, tc.wantErr, f.Err != nil, "Err: %v", f.Err)
			assert.Equal(t, filepath.Join(tc.root, "sys_vendor"), f.From)
		})
	}
}

func TestNotAzureVMNeedsEvidence(t *testing.T) {
	t.Parallel()
	assert.False(t, Firmware{}.NotAzureVM(), "nothing read is no evidence")
	assert.False(t, Firmware{Vendor: "microsoft corporation"}.NotAzureVM(), "case does not matter")
	assert.True(t, Firmware{Vendor: "Dell Inc."}.NotAzureVM())
	assert.False(t, Firmware{Vendor: "Dell Inc.", Err: os.ErrPermission}.NotAzureVM(), "a read error is no evidence")
}

func TestRead(t *testing.T) {
	t.Parallel()
	// Whatever this machine is, Read answers without failing and says
	// where it looked.
	f := Read()
	assert.NotEmpty(t, f.From)
	if f.Err != nil {
		assert.False(t, f.NotAzureVM())
	}
}
