-- 32 English chat prompts for the load test with the real sentence-embedding model
-- (gateway/load/model.sh), and the request body around a text.
local M = {}
function M.prompts()
  return {
    "How do I reset my password if I no longer have my phone?",
    "What is the difference between a Roth IRA and a traditional IRA?",
    "Can you explain how photosynthesis works in simple terms for a child?",
    "Write a short email asking my manager for a day off next week.",
    "What are the main causes of inflation in a growing economy today?",
    "How long should I boil an egg to get a soft yolk?",
    "Summarize the plot of Pride and Prejudice in three short sentences.",
    "Which programming language should I learn first for backend web development?",
    "Why does my sourdough bread come out dense and flat every time?",
    "What are good exercises to strengthen my lower back after an injury?",
    "How do I convert a string to an integer in Rust safely?",
    "Give me three ideas for a birthday party for a ten year old.",
    "What is the capital of Australia and why is it not Sydney?",
    "Explain the difference between TCP and UDP with a simple everyday example.",
    "How can I improve my credit score quickly before applying for a mortgage?",
    "What should I pack for a one week hiking trip in the Alps?",
    "Is it safe to eat raw cookie dough made with pasteurized eggs?",
    "How do vaccines train the immune system to recognise a new virus?",
    "Suggest a vegetarian dinner recipe that takes less than thirty minutes.",
    "What are the symptoms of burnout and how can I recover from it?",
    "How do I undo the last commit in git without losing my changes?",
    "Why is the sky blue during the day but red at sunset?",
    "What is the best way to learn a new language as an adult?",
    "Compare electric cars and hybrid cars for a daily commute of forty miles.",
    "How many hours of sleep does a teenager need each night to stay healthy?",
    "Explain what a neural network is to someone with no math background.",
    "What documents do I need to renew my passport in the United States?",
    "How do I politely decline a job offer after accepting a verbal offer?",
    "What are the pros and cons of working from home full time?",
    "How do I remove a red wine stain from a white cotton shirt?",
    "Recommend five science fiction novels for someone who loved The Martian.",
    "How do I make my houseplants survive the winter indoors?",
  }
end
function M.body(text)
  return string.format('{"model":"m","temperature":0,"messages":[{"role":"user","content":"%s"}]}', text)
end
return M
