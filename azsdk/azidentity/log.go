package azidentity

import (
	_ "unsafe" // for go:linkname

	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
)

// EventAuthentication is the azcore log event of this package's messages:
// which credential a chain used, which source a credential authenticates
// with, and each token it handed out (never the token itself). Enable it
// with azcore's log.SetEvents and receive it with log.SetListener.
const EventAuthentication azlog.Event = "Authentication"

// azcore keeps its log listener in a package of the Azure SDK that other
// modules may not import; these two names reach that package's writer so
// that this package's events arrive at the listener an application set with
// azcore's log.SetListener, filtered by its log.SetEvents, exactly like the
// events of azcore's own pipeline.

//go:linkname logShould github.com/Azure/azure-sdk-for-go/sdk/internal/log.Should
func logShould(cls azlog.Event) bool

//go:linkname logWrite github.com/Azure/azure-sdk-for-go/sdk/internal/log.Write
func logWrite(cls azlog.Event, message string)
