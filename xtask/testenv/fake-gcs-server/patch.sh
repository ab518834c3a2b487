#!/usr/bin/env bash
# Adds the XML API's object upload and multipart upload to a copy of fake-gcs-server's source
# (the current directory): object_store's GCS client speaks them, the emulator does not.
# Fails unless every change applied (a new emulator version must be looked at again).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cp "$here/xml_put.go" "$here/xml_multipart.go" fakestorage/
# An XML PUT without uploadType is an object upload (the emulator refuses it otherwise).
sed -i 's|^\t\treturn jsonResponse{errorMessage: "invalid uploadType", status: http.StatusBadRequest}$|\t\tif r.Method == http.MethodPut {\n\t\t\treturn s.xmlPutObject(bucketName, r)\n\t\t}\n&|' fakestorage/upload.go
grep -q 'return s.xmlPutObject(bucketName, r)' fakestorage/upload.go
# The multipart routes go before the XML object routes.
sed -i 's|^\thandler.MatcherFunc(s.publicHostMatcher).Path("/{bucketName}/{objectName:.+}").Methods(http.MethodPost, http.MethodPut).HandlerFunc(jsonToHTTPHandler(s.insertObject))$|\ts.routeXMLMultipart(handler)\n&|' fakestorage/server.go
grep -q 's.routeXMLMultipart(handler)' fakestorage/server.go
