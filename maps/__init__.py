"""Maps: folium maps that work with no network (situation, patterns) and the live map server."""
