package benchmarks

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFleetSmall runs the fleet benchmark at a small size: the store cuts
// the fleet's token requests, new processes take their token from Redis,
// and the outage fails no call.
func TestFleetSmall(t *testing.T) {
	t.Parallel()
	r, err := Fleet(context.Background(), FleetOptions{
		Exe: os.Args[0], Processes: 3, Duration: 2 * time.Second, RefreshIn: time.Second,
		FirstTokenRuns: 2, Outage: 1500 * time.Millisecond,
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, r.RequestsWithout, 3*2, "each process refreshes on its own: %+v", r)
	assert.Less(t, r.RequestsWith, r.RequestsWithout, "%+v", r)
	assert.LessOrEqual(t, r.RequestsWith, 2+2, "about one request per refresh for the fleet: %+v", r)
	assert.Zero(t, r.FirstFromRedisReq, "new processes took the token from Redis")
	assert.Positive(t, r.OutageCalls)
	assert.Zero(t, r.OutageFailed, "no failed GetToken while Redis was down")
	table := FleetTable(r)
	assert.Equal(t, 10, strings.Count(table, "\n"), table)
}

func TestFleetNeedsAnExecutable(t *testing.T) {
	t.Parallel()
	_, err := Fleet(context.Background(), FleetOptions{})
	assert.ErrorContains(t, err, "Exe is required")
}
