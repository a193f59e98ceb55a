package foptest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/brickfs/brickfs/brick/fop"
)

// CheckIntercepts checks the table a single-child layer keeps of the fop
// table: every fop is listed once, as intercepted or passed through, and
// the fops the package in dir (its non-test files) defines on *typeName
// are exactly the intercepted ones. A fop added to the table fails it
// until someone decides: a pass-through by default is how GlusterFS's
// copy_file_range reached one replica only.
func CheckIntercepts(t *testing.T, dir, typeName string, intercepts map[string]bool, passes []string) {
	t.Helper()
	decided := map[string]bool{}
	for m := range intercepts {
		decided[m] = true
	}
	for _, m := range passes {
		if decided[m] {
			t.Errorf("%s is listed as both intercepted and passed through", m)
		}
		decided[m] = true
	}
	table := reflect.TypeOf((*fop.Fops)(nil)).Elem()
	for i := 0; i < table.NumMethod(); i++ {
		if m := table.Method(i).Name; !decided[m] {
			t.Errorf("fop %s is new: decide whether %s intercepts it, and list it", m, typeName)
		}
	}
	if len(decided) != table.NumMethod() {
		t.Errorf("%d fops listed, the table has %d", len(decided), table.NumMethod())
	}
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	var own []string
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Recv == nil {
					continue
				}
				if st, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
					if id, ok := st.X.(*ast.Ident); ok && id.Name == typeName {
						if _, isFop := table.MethodByName(fd.Name.Name); isFop {
							own = append(own, fd.Name.Name)
						}
					}
				}
			}
		}
	}
	sort.Strings(own)
	var want []string
	for m := range intercepts {
		want = append(want, m)
	}
	sort.Strings(want)
	if strings.Join(own, " ") != strings.Join(want, " ") {
		t.Errorf("%s defines %v; the table says it intercepts %v", typeName, own, want)
	}
}
