package azidentity_test

import (
	"go/types"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/tools/go/packages"
)

const (
	realPath   = "github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	facadePath = "github.com/azcred/azcred/azsdk/azidentity"
)

// extraMethods are the exported methods the drop-in may have beyond
// azidentity's: redacted printing of credentials, and Unwrap on errors so
// that errors.As reaches the azcred error underneath.
var extraMethods = map[string]bool{"String": true, "GoString": true, "Unwrap": true}

// TestAPIMatchesAzidentity loads azidentity v1.15.0 (the version azsdk's
// go.mod requires, from the module cache) and the drop-in with go/types and
// compares every exported object: constants (type and value), variables,
// functions (signature), types (kind, underlying type, exported struct
// fields with their tags, embedded fields, and the exported method sets of
// T and *T). Types are printed with both packages' paths read as one, so a
// signature that names azidentity's own types matches the drop-in's
// same-named type.
func TestAPIMatchesAzidentity(t *testing.T) {
	t.Parallel()
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedTypes}
	pkgs, err := packages.Load(cfg, realPath, facadePath)
	require.NoError(t, err)
	byPath := map[string]*types.Package{}
	for _, p := range pkgs {
		require.Empty(t, p.Errors, "loading %s", p.PkgPath)
		byPath[p.PkgPath] = p.Types
	}
	want, got := byPath[realPath], byPath[facadePath]
	require.NotNil(t, want, "azidentity did not load; run go mod download in azsdk/")
	require.NotNil(t, got)

	c := comparer{t: t}
	for _, name := range want.Scope().Names() {
		w := want.Scope().Lookup(name)
		if !w.Exported() {
			continue
		}
		g := got.Scope().Lookup(name)
		if !assert.NotNil(t, g, "%s is missing", name) {
			continue
		}
		c.object(w, g)
	}
	for _, name := range got.Scope().Names() {
		if o := got.Scope().Lookup(name); o.Exported() {
			assert.NotNil(t, want.Scope().Lookup(name), "%s is not in azidentity", name)
		}
	}
	t.Logf("compared %d exported identifiers of azidentity v1.15.0 (objects, fields, methods): %d top-level objects, %d struct fields, %d methods",
		c.objects+c.fields+c.methods, c.objects, c.fields, c.methods)
	assert.GreaterOrEqual(t, c.objects, 60, "too few objects compared; did azidentity load?")
}

type comparer struct {
	t                        *testing.T
	objects, fields, methods int
}

// qualify prints azidentity and the drop-in under one name.
func qualify(p *types.Package) string {
	if p.Path() == realPath || p.Path() == facadePath {
		return "azidentity"
	}
	return p.Path()
}

func typeString(t types.Type) string { return types.TypeString(t, qualify) }

// sameType reports whether w and g print alike or are the very same type
// (an alias of azcore's, say, that one package names through the alias and
// the other through its target).
func sameType(w, g types.Type) bool {
	return typeString(w) == typeString(g) || types.Identical(types.Unalias(w), types.Unalias(g))
}

func (c *comparer) object(w, g types.Object) {
	t := c.t
	c.objects++
	name := w.Name()
	switch w := w.(type) {
	case *types.Const:
		g, ok := g.(*types.Const)
		if assert.True(t, ok, "%s should be a constant", name) {
			assert.True(t, sameType(w.Type(), g.Type()), "type of constant %s: %s, want %s", name, g.Type(), w.Type())
			assert.Equal(t, w.Val().ExactString(), g.Val().ExactString(), "value of constant %s", name)
		}
	case *types.Var:
		g, ok := g.(*types.Var)
		if assert.True(t, ok, "%s should be a variable", name) {
			assert.True(t, sameType(w.Type(), g.Type()), "type of variable %s: %s, want %s", name, g.Type(), w.Type())
		}
	case *types.Func:
		g, ok := g.(*types.Func)
		if assert.True(t, ok, "%s should be a function", name) {
			assert.Equal(t, typeString(w.Type()), typeString(g.Type()), "signature of %s", name)
		}
	case *types.TypeName:
		g, ok := g.(*types.TypeName)
		if assert.True(t, ok, "%s should be a type", name) {
			c.typeName(w, g)
		}
	default:
		t.Errorf("%s: unexpected object kind %T", name, w)
	}
}

func (c *comparer) typeName(w, g *types.TypeName) {
	t := c.t
	name := w.Name()
	assert.Equal(t, w.IsAlias(), g.IsAlias(), "%s: alias in one package only", name)
	wt, gt := w.Type(), g.Type()
	if w.IsAlias() {
		// azidentity.Cache aliases a type of azidentity's internal package,
		// which no other module can name; the drop-in's aliases a type of
		// its own internal package. Both must be opaque structs: no exported
		// fields or methods, a usable zero value.
		wt, gt = types.Unalias(wt), types.Unalias(gt)
		wn, wok := wt.(*types.Named)
		gn, gok := gt.(*types.Named)
		if assert.True(t, wok && gok, "%s: aliases of named types", name) {
			assert.True(t, strings.Contains(wn.Obj().Pkg().Path(), "/internal"), "%s aliases %s", name, wn)
			assert.True(t, strings.Contains(gn.Obj().Pkg().Path(), "/internal"), "%s aliases %s", name, gn)
			assert.Equal(t, wn.Obj().Name(), gn.Obj().Name(), "%s: aliased type's name", name)
		}
	}
	c.underlying(name, wt.Underlying(), gt.Underlying())
	c.methodSet(name, wt, gt)
	c.methodSet("*"+name, types.NewPointer(wt), types.NewPointer(gt))
}

func (c *comparer) underlying(name string, w, g types.Type) {
	t := c.t
	switch w := w.(type) {
	case *types.Struct:
		g, ok := g.(*types.Struct)
		if !assert.True(t, ok, "%s should be a struct", name) {
			return
		}
		gf := map[string]int{}
		for i := range g.NumFields() {
			gf[g.Field(i).Name()] = i
		}
		wantExported := map[string]bool{}
		for i := range w.NumFields() {
			f := w.Field(i)
			if !f.Exported() {
				continue
			}
			c.fields++
			wantExported[f.Name()] = true
			j, ok := gf[f.Name()]
			if !assert.True(t, ok, "field %s.%s is missing", name, f.Name()) {
				continue
			}
			h := g.Field(j)
			assert.Equal(t, typeString(f.Type()), typeString(h.Type()), "type of field %s.%s", name, f.Name())
			assert.Equal(t, f.Embedded(), h.Embedded(), "field %s.%s embedded in one only", name, f.Name())
			assert.Equal(t, w.Tag(i), g.Tag(j), "tag of field %s.%s", name, f.Name())
		}
		for i := range g.NumFields() {
			if f := g.Field(i); f.Exported() {
				assert.True(t, wantExported[f.Name()], "field %s.%s is not in azidentity", name, f.Name())
			}
		}
	case *types.Interface:
		g, ok := g.(*types.Interface)
		if !assert.True(t, ok, "%s should be an interface", name) {
			return
		}
		assert.Equal(t, exportedMethods(types.NewMethodSet(w)), exportedMethods(types.NewMethodSet(g)), "methods of interface %s", name)
		assert.Equal(t, sealed(w), sealed(g), "%s: sealed (an unexported method) in one only", name)
	default:
		assert.Equal(t, typeString(w), typeString(g), "underlying type of %s", name)
	}
}

// sealed reports whether an interface has an unexported method, so that
// only its own package can implement it.
func sealed(i *types.Interface) bool {
	for m := range i.Methods() {
		if !m.Exported() {
			return true
		}
	}
	return false
}

func exportedMethods(ms *types.MethodSet) map[string]string {
	out := map[string]string{}
	for sel := range ms.Methods() {
		if m := sel.Obj(); m.Exported() {
			out[m.Name()] = typeString(sel.Type())
		}
	}
	return out
}

func (c *comparer) methodSet(name string, w, g types.Type) {
	t := c.t
	if _, ok := w.Underlying().(*types.Interface); ok {
		return // compared with the underlying type
	}
	wm := exportedMethods(types.NewMethodSet(w))
	gm := exportedMethods(types.NewMethodSet(g))
	names := make([]string, 0, len(wm))
	for m := range wm {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		if strings.HasPrefix(name, "*") {
			c.methods++
		}
		if assert.Contains(t, gm, m, "method %s.%s is missing", name, m) {
			assert.Equal(t, wm[m], gm[m], "signature of %s.%s", name, m)
		}
	}
	for m := range gm {
		if _, ok := wm[m]; !ok {
			assert.True(t, extraMethods[m], "method %s.%s is not in azidentity", name, m)
		}
	}
}
