// HTTP hello (net/http, as a Go programmer writes it) or TCP echo (a
// goroutine per connection). usage: server http|echo ADDR GOMAXPROCS
package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
)

func main() {
	if len(os.Args) != 4 {
		os.Stderr.WriteString("usage: server http|echo ADDR GOMAXPROCS\n")
		os.Exit(2)
	}
	procs, _ := strconv.Atoi(os.Args[3])
	runtime.GOMAXPROCS(procs)
	addr := os.Args[2]
	if os.Args[1] == "http" {
		hello := []byte("Hello, World!")
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(hello)
		})
		panic(http.ListenAndServe(addr, nil))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic(err)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			panic(err)
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 16*1024)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err == io.EOF || err != nil {
					return
				}
			}
		}(conn)
	}
}
