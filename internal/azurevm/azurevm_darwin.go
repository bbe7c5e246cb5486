//go:build darwin

package azurevm

// On macOS there is no SMBIOS to read, and none is needed: Azure offers no
// macOS virtual machines (see the package documentation).
func read() Firmware {
	return Firmware{Vendor: "Apple", From: "the operating system (macOS; Azure offers no macOS virtual machines)"}
}
