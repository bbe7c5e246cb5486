package exec

import "os"

// Find returns the path of the executable Run would start for c, without
// starting it; the error is a [*NotFoundError] when there is none.
func (o OS) Find(c Command) (string, error) {
	search := o.Path
	if search == "" {
		search = os.Getenv("PATH")
	}
	return lookPath(c, search)
}
