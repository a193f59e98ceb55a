package integration

import (
	"log"
	"sync"
)

// Program implements T for a program that uses the harness outside `go
// test` (the demo cluster, the stall table): Fatalf and Skipf stop the body
// given to Run, cleanups run in reverse order, and Run's exit code says
// whether anything failed.
type Program struct {
	name     string
	mu       sync.Mutex
	failed   bool
	cleanups []func()
}

// NewProgram returns a Program that logs under name.
func NewProgram(name string) *Program { return &Program{name: name} }

type stopProgram struct{}

// Run runs body, then every cleanup, and returns 1 if anything failed.
func (p *Program) Run(body func()) (code int) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stopProgram); !ok {
				p.Errorf("panic: %v", r)
			}
		}
		p.mu.Lock()
		cleanups := p.cleanups
		p.cleanups = nil
		p.mu.Unlock()
		if len(cleanups) > 0 {
			p.Logf("tearing down")
		}
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		if p.Failed() {
			code = 1
		}
	}()
	body()
	return 0
}

func (p *Program) Helper()      {}
func (p *Program) Name() string { return p.name }

func (p *Program) Cleanup(f func()) {
	p.mu.Lock()
	p.cleanups = append(p.cleanups, f)
	p.mu.Unlock()
}

func (p *Program) Logf(format string, args ...any) { log.Printf(format, args...) }

func (p *Program) Errorf(format string, args ...any) {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
	log.Printf("ERROR: "+format, args...)
}

// Fatalf logs and stops the body; it must be called from Run's goroutine.
func (p *Program) Fatalf(format string, args ...any) {
	p.Errorf(format, args...)
	panic(stopProgram{})
}

func (p *Program) Skipf(format string, args ...any) { p.Fatalf(format, args...) }

func (p *Program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}
