// The comparison workloads in Go, written the way a Go programmer would.
// usage: wl WORKLOAD GOMAXPROCS [N]
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func rssField(field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		panic(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field) {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb * 1024
		}
	}
	return 0
}

func nsPer(start time.Time, n int) float64 {
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

func spawnJoin(n int) float64 {
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return nsPer(start, n)
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: wl spawn|pingpong|yield|idle|sleep|park GOMAXPROCS [N]")
		os.Exit(2)
	}
	workload := os.Args[1]
	procs, _ := strconv.Atoi(os.Args[2])
	runtime.GOMAXPROCS(procs)
	n := -1
	if len(os.Args) > 3 {
		n, _ = strconv.Atoi(os.Args[3])
	}
	def := func(d int) int {
		if n < 0 {
			return d
		}
		return n
	}
	var value float64
	switch workload {
	case "spawn":
		n := def(100000)
		spawnJoin(n)
		value = spawnJoin(n)
	case "pingpong":
		n := def(1000000)
		ping, pong := make(chan int), make(chan int)
		go func() {
			for v := range ping {
				pong <- v
			}
		}()
		start := time.Now()
		for i := 0; i < n; i++ {
			ping <- i
			if <-pong != i {
				panic("out of order")
			}
		}
		value = nsPer(start, n)
		close(ping)
	case "yield":
		n := def(1000)
		start := time.Now()
		var wg sync.WaitGroup
		wg.Add(1000)
		for t := 0; t < 1000; t++ {
			go func() {
				for i := 0; i < n; i++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		value = nsPer(start, 1000*n)
	case "idle":
		n := def(100000)
		base := rssField("VmRSS:")
		gate := make(chan struct{})
		var started int64
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				atomic.AddInt64(&started, 1)
				<-gate
				wg.Done()
			}()
		}
		for atomic.LoadInt64(&started) < int64(n) {
			time.Sleep(time.Millisecond)
		}
		value = (rssField("VmHWM:") - base) / float64(n)
		close(gate)
		wg.Wait()
	case "sleep":
		n := def(100000)
		start := time.Now()
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				time.Sleep(10 * time.Millisecond)
				wg.Done()
			}()
		}
		wg.Wait()
		value = float64(time.Since(start).Microseconds()) / 1e3
	case "park":
		// Scale: n goroutines each block on one channel, then it is closed
		// and all are joined (WaitGroup). Prints total ms; stderr gets the
		// phases and peak RSS.
		n := def(1000000)
		base := rssField("VmRSS:")
		gate, allStarted := make(chan struct{}), make(chan struct{})
		var started int64
		var wg sync.WaitGroup
		wg.Add(n)
		start := time.Now()
		for i := 0; i < n; i++ {
			go func() {
				if atomic.AddInt64(&started, 1) == int64(n) {
					close(allStarted)
				}
				<-gate
				wg.Done()
			}()
		}
		<-allStarted
		parked := time.Since(start)
		rssPer := (rssField("VmHWM:") - base) / float64(n)
		close(gate)
		wg.Wait()
		total := time.Since(start)
		fmt.Fprintf(os.Stderr, "park %d: spawn+park %.1f ms, wake+join %.1f ms, %.0f B/goroutine peak\n",
			n, float64(parked.Microseconds())/1e3, float64((total-parked).Microseconds())/1e3, rssPer)
		value = float64(total.Microseconds()) / 1e3
	default:
		panic("unknown workload " + workload)
	}
	fmt.Printf("%.1f\n", value)
}
