// Command hostname answers with the pod's host name: on every TCP
// connection to the ports given by -tcp, which it then closes, and to
// every UDP datagram to the ports given by -udp. The network tests run it
// as a service backend and behind hostPorts.
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"strings"
)

func main() {
	tcp := flag.String("tcp", "", "comma-separated TCP ports")
	udp := flag.String("udp", "", "comma-separated UDP ports")
	flag.Parse()
	name, err := os.Hostname()
	if err != nil {
		log.Fatal(err)
	}
	reply := []byte(name + "\n")
	for _, p := range ports(*tcp) {
		l, err := net.Listen("tcp", ":"+p)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					log.Fatal(err)
				}
				c.Write(reply)
				c.Close()
			}
		}()
	}
	for _, p := range ports(*udp) {
		c, err := net.ListenPacket("udp", ":"+p)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			buf := make([]byte, 2048)
			for {
				_, from, err := c.ReadFrom(buf)
				if err != nil {
					log.Fatal(err)
				}
				c.WriteTo(reply, from)
			}
		}()
	}
	log.Printf("serving tcp %q, udp %q as %s", *tcp, *udp, name)
	select {}
}

func ports(list string) []string {
	if list == "" {
		return nil
	}
	return strings.Split(list, ",")
}
