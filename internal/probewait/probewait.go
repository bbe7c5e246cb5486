// Package probewait carries, in a context, the hook through which a source
// that is deciding by a network probe tells whoever started it that it is
// now waiting on the network: nothing has answered it within its grace, so
// its answer will take up to its probe timeout. DefaultAzureCredential uses
// it to start later sources only while such a wait is really happening (a
// healthy IMDS answers within the grace, and then nothing else is started).
package probewait

import "context"

type key struct{}

// With returns ctx carrying waiting, which a probing source calls when it
// starts waiting on the network. waiting must be safe to call more than
// once and from any goroutine, and must not block.
func With(ctx context.Context, waiting func()) context.Context {
	return context.WithValue(ctx, key{}, waiting)
}

// Signal calls the hook ctx carries, if any.
func Signal(ctx context.Context) {
	if f, ok := ctx.Value(key{}).(func()); ok {
		f()
	}
}
