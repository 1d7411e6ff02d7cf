# ragd in a minimal image: the single executable from `make build` and nothing else.
#
#   make build && podman build -t ragd . && podman run -p 8080:8080 -v ragd-data:/data ragd
#
# The binary needs glibc, libstdc++ and libgcc_s (onnxruntime and libvips are C++), which is
# what distroless/cc holds. It writes only under /data: the database, file bytes, indexes,
# and the native libraries it carries (extracted once to /data/cache). No shell, no package
# manager. BASE can name any glibc image that has libstdc++ (debian:12-slim works too).
ARG BASE=gcr.io/distroless/cc-debian12
FROM ${BASE}
COPY dist/ragd /usr/local/bin/ragd
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ragd", "serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]
