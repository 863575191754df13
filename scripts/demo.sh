#!/usr/bin/env bash
# The main job, from a fresh machine: installs what it needs, builds facedb, enrolls two
# people from face_recognition's example images, identifies new photos of them and a
# stranger, and prints the answers; then the seed's `people` example.
# Usage: ./scripts/demo.sh   (from the repository root; needs root for apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."
for s in scripts/setup-*.sh; do
    [ -e "$s" ] || continue
    bash "$s"
done
cargo build --release -p facedb
facedb=./target/release/facedb
models="${FACEDB_MODELS:-$PWD/models}"
ti="$models/test_images"     # face_recognition 1.3.0 + insightface 2.1 images (setup-face.sh)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The gallery: one folder per person (face_recognition's examples: obama.jpg, biden.jpg).
mkdir -p "$work/people/barack_obama" "$work/people/joe_biden" "$work/photos"
cp "$ti/obama.jpg" "$work/people/barack_obama/"
cp "$ti/biden.jpg" "$work/people/joe_biden/"
# New photos: two other photos of Obama, a partial face, a 32-bit PNG, and a stranger
# (Tom Hanks, from insightface's sample images), and a group photo of strangers.
for f in obama2.jpg obama3.jpg obama_partial_face.jpg 32bit.png Tom_Hanks_54745.png t1.jpg; do
    cp "$ti/$f" "$work/photos/"
done

echo
echo "== facedb enroll $work/people"
"$facedb" enroll "$work/people" --data "$work/db" --models "$models"
echo
echo "== facedb people"
"$facedb" people --data "$work/db"
echo
echo "== facedb identify (file,name,distance; default tolerance, see README)"
"$facedb" identify "$work/photos" --data "$work/db" --models "$models" | sed "s|$work/photos/||"
echo
echo "== the same, with every face's box, verdict, margin and top 2 persons"
"$facedb" identify "$work/photos" --long --top 2 --data "$work/db" --models "$models" | sed "s|$work/photos/||"
echo
echo "== facedb verify obama.jpg obama2.jpg / obama.jpg biden.jpg"
"$facedb" verify "$ti/obama.jpg" "$ti/obama2.jpg" --models "$models"
"$facedb" verify "$ti/obama.jpg" "$ti/biden.jpg" --models "$models"
echo
echo "== facedb demo (the seed's people example through the embedded store)"
"$facedb" demo
