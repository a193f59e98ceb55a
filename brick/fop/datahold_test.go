package fop

import (
	"context"
	"testing"
	"time"
)

func TestDataHold(t *testing.T) {
	var none *DataHold
	if none.Add() {
		t.Error("a nil hold counted a call")
	}
	none.Seal()
	none.Wait()
	if none.Held() || DataHoldOf(context.Background()) != nil {
		t.Fatal("a nil or absent hold is held")
	}
	h := new(DataHold)
	ctx := WithDataHold(context.Background(), h)
	if DataHoldOf(ctx) != h {
		t.Fatal("the context lost its hold")
	}
	if !h.Add() || !h.Add() {
		t.Fatal("an open hold did not count a call")
	}
	h.Seal()
	if h.Add() {
		t.Error("a sealed hold counted a call")
	}
	waited := make(chan struct{})
	go func() { h.Wait(); close(waited) }()
	waited2 := make(chan struct{})
	go func() { h.Wait(); close(waited2) }()
	h.Done()
	if !h.Held() {
		t.Error("not held with a call left")
	}
	select {
	case <-waited:
		t.Fatal("Wait returned with a call left")
	case <-time.After(10 * time.Millisecond):
	}
	h.Done()
	for _, w := range []chan struct{}{waited, waited2} {
		select {
		case <-w:
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not return once every call ended")
		}
	}
	if h.Held() {
		t.Error("held after every call ended")
	}
	h.Wait() // nothing left: returns at once
	defer func() {
		if recover() == nil {
			t.Error("Done without a counted Add did not panic")
		}
	}()
	h.Done()
}
