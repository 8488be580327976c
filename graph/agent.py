"""The graph `langgraph.json` serves (Studio, `langgraph dev`)."""

from graph.builder import build_graph

graph = build_graph()
