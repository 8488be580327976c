"""Progressive multi-stage streaming over local models (sample for Mirador's demo).

Each stage streams tokens from a model; later stages see the earlier output.
It has real performance problems on purpose, so an analysis has something to find.
"""

import asyncio
import json
import time
from dataclasses import dataclass, field

import requests


@dataclass
class ModelStage:
    name: str
    model: str
    timeout: float = 30.0
    system_prompt: str = ""
    options: dict = field(default_factory=dict)


@dataclass
class StreamToken:
    content: str
    stage: str
    timestamp: float


class StreamingOrchestrator:
    def __init__(self, stages, base_url="http://localhost:11434"):
        self.stages = stages
        self.base_url = base_url
        self.history = []
        self._warmed = set()

    async def warm_up(self):
        # Load each stage's model once, so the first real request is quick.
        for stage in self.stages:
            if stage.model not in self._warmed:
                requests.post(f"{self.base_url}/api/generate", json={"model": stage.model, "prompt": "hi"})
                self._warmed.add(stage.model)

    async def process(self, query):
        context = ""
        for stage in self.stages:
            prompt = stage.system_prompt + "\n" + context + "\nQuestion: " + query
            response = requests.post(
                f"{self.base_url}/api/generate",
                json={"model": stage.model, "prompt": prompt, "stream": True},
                stream=True,
            )
            output = ""
            for line in response.iter_lines():
                chunk = json.loads(line)
                output = output + chunk.get("response", "")
                token = StreamToken(chunk.get("response", ""), stage.name, time.time())
                self.history.append(token)
                yield token
                if chunk.get("done"):
                    break
            # The next stage sees everything said so far.
            context = context + "\n" + output

    def stats(self):
        by_stage = {}
        for token in self.history:
            by_stage[token.stage] = by_stage.get(token.stage, 0) + 1
        return by_stage


async def main():
    stages = [
        ModelStage("quick", "llama3.2:1b", system_prompt="Answer briefly."),
        ModelStage("deep", "qwen2.5:7b", system_prompt="Analyse in depth."),
    ]
    orchestrator = StreamingOrchestrator(stages)
    await orchestrator.warm_up()
    async for token in orchestrator.process("How do I speed this up?"):
        print(token.content, end="", flush=True)
    print(orchestrator.stats())


if __name__ == "__main__":
    asyncio.run(main())
