//go:build windows

package azurevm

import (
	"errors"
	"strings"

	"golang.org/x/sys/windows/registry"
)

// biosKey is where Windows keeps a copy of the SMBIOS system information.
const biosKey = `HARDWARE\DESCRIPTION\System\BIOS`

// readBIOS reads the system manufacturer and, where Windows has it, the
// chassis asset tag; tests may replace it.
var readBIOS = func() (vendor, assetTag string, err error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, biosKey, registry.QUERY_VALUE)
	if err != nil {
		return "", "", err
	}
	defer k.Close()
	vendor, _, err = k.GetStringValue("SystemManufacturer")
	if err != nil {
		return "", "", err
	}
	assetTag, _, _ = k.GetStringValue("ChassisAssetTag")
	return vendor, assetTag, nil
}

func read() Firmware {
	f := Firmware{From: `HKLM\` + biosKey + `\SystemManufacturer`}
	vendor, tag, err := readBIOS()
	if err != nil {
		f.Err = err
		return f
	}
	f.Vendor, f.AssetTag = strings.TrimSpace(vendor), strings.TrimSpace(tag)
	if f.Vendor == "" {
		f.Err = errors.New("the firmware names no system manufacturer")
	}
	return f
}
