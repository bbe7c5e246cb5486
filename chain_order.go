package azcred

import (
	"fmt"
	"slices"
	"strings"
)

// orderTools puts the developer tools of rows in the order names gives:
// the tools' slots in rows keep their positions and are refilled with the
// named tools first, in the given order, then the others in their default
// order. A name that is not a developer tool, or that appears twice, is an
// error; a named tool that is excluded is skipped.
func orderTools(rows []defaultSource, names []string) ([]defaultSource, error) {
	if len(names) == 0 {
		return rows, nil
	}
	var tools []string
	for _, s := range defaultSources {
		if s.group == "dev" {
			tools = append(tools, s.name)
		}
	}
	seen := map[string]bool{}
	for _, n := range names {
		if !slices.Contains(tools, n) {
			return nil, fmt.Errorf("%s: DeveloperToolOrder names %q, which is not a developer tool; use %s", credNameDefault, n, strings.Join(tools, ", "))
		}
		if seen[n] {
			return nil, fmt.Errorf("%s: DeveloperToolOrder names %q twice; name each tool once", credNameDefault, n)
		}
		seen[n] = true
	}
	var slots []int
	present := map[string]defaultSource{}
	for i, s := range rows {
		if s.group == "dev" {
			slots = append(slots, i)
			present[s.name] = s
		}
	}
	ordered := make([]defaultSource, 0, len(slots))
	for _, n := range names {
		if s, ok := present[n]; ok {
			ordered = append(ordered, s)
		}
	}
	for _, i := range slots {
		if !seen[rows[i].name] {
			ordered = append(ordered, rows[i])
		}
	}
	out := slices.Clone(rows)
	for k, i := range slots {
		out[i] = ordered[k]
	}
	return out, nil
}
