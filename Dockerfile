# Build stage: one static binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/minik .

# Runtime: what `minik server` and its embedded agent need.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates iproute2 iptables \
      containerd runc containernetworking-plugins \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/minik /usr/local/bin/minik
VOLUME /var/lib/minik
EXPOSE 6443
ENTRYPOINT ["/usr/local/bin/minik"]
CMD ["server"]
