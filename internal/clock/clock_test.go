package clock

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFakeTimersFireInOrderWhenDue(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	a := f.NewTimer(2 * time.Second)
	b := f.NewTimer(time.Second)
	assert.Equal(t, 2, f.Timers())

	f.Advance(500 * time.Millisecond)
	select {
	case <-a.C():
		t.Fatal("timer a fired early")
	case <-b.C():
		t.Fatal("timer b fired early")
	default:
	}
	f.Advance(time.Second)
	assert.Equal(t, start.Add(1500*time.Millisecond), <-b.C())
	assert.Equal(t, 1, f.Timers())
	assert.True(t, a.Stop())
	assert.False(t, a.Stop())
	assert.Equal(t, 0, f.Timers())
	f.Advance(time.Hour)
	select {
	case <-a.C():
		t.Fatal("stopped timer fired")
	default:
	}
}

func TestSleepReturnsOnAdvanceOrCancel(t *testing.T) {
	t.Parallel()
	f := NewFake(time.Unix(0, 0))
	done := make(chan error, 1)
	go func() { done <- Sleep(context.Background(), f, time.Minute) }()
	require.NoError(t, f.BlockUntilTimers(context.Background(), 1))
	f.Advance(time.Minute)
	assert.NoError(t, <-done)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- Sleep(ctx, f, time.Minute) }()
	require.NoError(t, f.BlockUntilTimers(context.Background(), 1))
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, 0, f.Timers(), "a cancelled sleep stops its timer")
}

func TestZeroDurationTimerFiresAtOnce(t *testing.T) {
	t.Parallel()
	f := NewFake(time.Unix(5, 0))
	tm := f.NewTimer(0)
	assert.Equal(t, time.Unix(5, 0), <-tm.C())
	assert.False(t, tm.Stop())
	assert.NoError(t, Sleep(context.Background(), f, 0))
}

func TestOrReal(t *testing.T) {
	t.Parallel()
	assert.Equal(t, Real, OrReal(nil))
	f := NewFake(time.Unix(0, 0))
	assert.Equal(t, Clock(f), OrReal(f))
}
